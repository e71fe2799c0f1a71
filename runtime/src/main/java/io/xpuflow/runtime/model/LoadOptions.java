package io.xpuflow.runtime.model;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;

/**
 * How a model is placed on its device.
 *
 * @param threads kernel threads of the device; {@code <= 0} uses every core the JVM may use
 * @param maxTokensPerStep token rows one step may carry (longer prompts are prefilled in chunks)
 * @param maxSeqsPerStep sequences one step may carry
 * @param weightFormat what matrix products compute in; {@code null}: chosen from the checkpoint
 *     ({@link LoadedModel#defaultWeightFormat})
 * @param kvCacheDtype element type of the KV cache; {@code null}: {@link KvCacheDtype#defaultFor} the
 *     weight format
 */
public record LoadOptions(int threads, int maxTokensPerStep, int maxSeqsPerStep, WeightFormat weightFormat,
                          KvCacheDtype kvCacheDtype) {
    public LoadOptions {
        if (maxTokensPerStep <= 0 || maxSeqsPerStep <= 0) {
            throw new IllegalArgumentException("maxTokensPerStep and maxSeqsPerStep must be positive: " + this);
        }
    }

    /** Weight format and KV cache dtype chosen from the checkpoint. */
    public LoadOptions(int threads, int maxTokensPerStep, int maxSeqsPerStep) {
        this(threads, maxTokensPerStep, maxSeqsPerStep, null, null);
    }

    /** All cores, steps of up to 256 tokens and 64 sequences, formats chosen from the checkpoint. */
    public static LoadOptions defaults() {
        return new LoadOptions(0, 256, 64);
    }

    public LoadOptions withThreads(int n) {
        return new LoadOptions(n, maxTokensPerStep, maxSeqsPerStep, weightFormat, kvCacheDtype);
    }

    public LoadOptions withWeightFormat(WeightFormat format) {
        return new LoadOptions(threads, maxTokensPerStep, maxSeqsPerStep, format, kvCacheDtype);
    }

    public LoadOptions withKvCacheDtype(KvCacheDtype dtype) {
        return new LoadOptions(threads, maxTokensPerStep, maxSeqsPerStep, weightFormat, dtype);
    }
}
