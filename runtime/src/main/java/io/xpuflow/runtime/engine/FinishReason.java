package io.xpuflow.runtime.engine;

/** Why a generation ended, with the OpenAI / vLLM names in {@link #wireName()}. */
public enum FinishReason {
    /** An end-of-sequence token, a stop token id or a stop string. */
    STOP("stop"),
    /** {@code max_tokens} generated, or the model's context is full. */
    LENGTH("length"),
    /** Cancelled by the caller (vLLM calls this "abort"). */
    CANCELLED("cancelled");

    private final String wireName;

    FinishReason(String wireName) {
        this.wireName = wireName;
    }

    public String wireName() {
        return wireName;
    }
}
