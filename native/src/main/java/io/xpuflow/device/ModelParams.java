package io.xpuflow.device;

/**
 * Model-wide parameters of a device model ({@code xpu_model_params}).
 *
 * @param numLayers decoder layers; MTP layers follow them as layers {@code numLayers ..}
 * @param numKvGroups layers that share one block table form a KV group
 * @param maxTokensPerStep token rows one step may carry; sizes the step's scratch memory
 * @param maxSeqsPerStep sequences one step may carry
 */
public record ModelParams(
        long vocabSize,
        long hiddenSize,
        long numLayers,
        long numMtpLayers,
        long numKvGroups,
        long maxTokensPerStep,
        long maxSeqsPerStep,
        double normEps) {}
