package io.xpuflow.runtime.engine;

/**
 * Receives a request's tokens as they are generated (streaming). Called on the engine's loop thread,
 * in order, once per token: keep it short and never block, or every running request waits. An
 * exception thrown here is logged and the request goes on.
 */
@FunctionalInterface
public interface TokenListener {
    /**
     * @param tokenId the token just generated
     * @param textDelta text that became final with it: empty while a multi-byte character is incomplete
     *     or while the tail might still turn out to be a stop string; never part of a stop string
     */
    void onToken(int tokenId, String textDelta);

    /** Ignores every token. */
    TokenListener NONE = (id, text) -> { };
}
