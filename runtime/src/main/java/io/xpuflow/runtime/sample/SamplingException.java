package io.xpuflow.runtime.sample;

/**
 * One logits row could not be turned into a token: the row holds a non-finite value the model should
 * never produce (NaN or +infinity), or no token is left to choose (every token suppressed or at
 * -infinity). It concerns the one request whose row it is, so the engine fails that request and goes on
 * serving the others; it is never the caller's {@code INVALID_PARAM} (what a request's parameters alone
 * make impossible is refused when it is submitted).
 */
public final class SamplingException extends RuntimeException {
    public SamplingException(String message) {
        super(message);
    }
}
