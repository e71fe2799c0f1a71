package io.xpuflow.device;

import java.util.Objects;

/**
 * Model-wide parameters of a device model ({@code xpu_model_params}).
 *
 * @param numLayers decoder layers; MTP layers follow them as layers {@code numLayers ..}
 * @param numKvGroups layers that share one block table form a KV group
 * @param maxTokensPerStep token rows one step may carry; sizes the step's scratch memory
 * @param maxSeqsPerStep sequences one step may carry
 * @param weightFormat what the matrix products compute in
 * @param kvCacheDtype element type of the KV cache
 */
public record ModelParams(
        long vocabSize,
        long hiddenSize,
        long numLayers,
        long numMtpLayers,
        long numKvGroups,
        long maxTokensPerStep,
        long maxSeqsPerStep,
        double normEps,
        WeightFormat weightFormat,
        KvCacheDtype kvCacheDtype) {

    public ModelParams {
        Objects.requireNonNull(weightFormat, "weight format");
        Objects.requireNonNull(kvCacheDtype, "KV cache dtype");
    }

    /** Exact mode with an FP32 KV cache. */
    public ModelParams(long vocabSize, long hiddenSize, long numLayers, long numMtpLayers, long numKvGroups,
                       long maxTokensPerStep, long maxSeqsPerStep, double normEps) {
        this(vocabSize, hiddenSize, numLayers, numMtpLayers, numKvGroups, maxTokensPerStep, maxSeqsPerStep, normEps,
                WeightFormat.EXACT, KvCacheDtype.F32);
    }
}
