package io.xpuflow.runtime.model;

/**
 * How a model is placed on its device.
 *
 * @param threads kernel threads of the device; {@code <= 0} uses every core
 * @param maxTokensPerStep token rows one step may carry (longer prompts are prefilled in chunks)
 * @param maxSeqsPerStep sequences one step may carry
 */
public record LoadOptions(int threads, int maxTokensPerStep, int maxSeqsPerStep) {
    public LoadOptions {
        if (maxTokensPerStep <= 0 || maxSeqsPerStep <= 0) {
            throw new IllegalArgumentException("maxTokensPerStep and maxSeqsPerStep must be positive: " + this);
        }
    }

    /** All cores, steps of up to 256 tokens and 64 sequences. */
    public static LoadOptions defaults() {
        return new LoadOptions(0, 256, 64);
    }

    public LoadOptions withThreads(int n) {
        return new LoadOptions(n, maxTokensPerStep, maxSeqsPerStep);
    }
}
