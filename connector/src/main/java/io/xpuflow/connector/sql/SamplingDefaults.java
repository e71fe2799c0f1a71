package io.xpuflow.connector.sql;

import io.xpuflow.runtime.sample.SamplingParams;
import java.io.Serializable;
import java.util.List;

/**
 * The sampling settings a SQL model or {@code LLM_GENERATE} applies to every row, in a form Flink can
 * ship to TaskManagers ({@link SamplingParams} is not serializable). Per-row options
 * ({@code LLM_GENERATE}'s JSON) start from these.
 *
 * <p>The defaults are greedy decoding of 16 tokens, as in {@link SamplingParams#builder()}: a streaming
 * job should be reproducible unless it asks for randomness.
 *
 * @param seed fixed seed for every row; null: each row's seed comes from its request id (see {@link RequestIds})
 */
public record SamplingDefaults(int maxTokens, double temperature, double topP, int topK, double minP, Long seed,
                               List<String> stop, double presencePenalty, double frequencyPenalty,
                               double repetitionPenalty, boolean ignoreEos) implements Serializable {

    /** Greedy, 16 tokens, every filter and penalty off. */
    public static final SamplingDefaults DEFAULT = new SamplingDefaults(16, 0, 1, 0, 0, null, List.of(), 0, 0, 1, false);

    /** @throws IllegalArgumentException naming the field (OpenAI name) of a value out of range */
    public SamplingDefaults {
        stop = stop == null ? List.of() : List.copyOf(stop);
        toBuilder(maxTokens, temperature, topP, topK, minP, seed, stop, presencePenalty, frequencyPenalty,
                repetitionPenalty, ignoreEos).build(); // validates
    }

    public SamplingDefaults withMaxTokens(int v) {
        return new SamplingDefaults(v, temperature, topP, topK, minP, seed, stop, presencePenalty, frequencyPenalty,
                repetitionPenalty, ignoreEos);
    }

    public SamplingDefaults withTemperature(double v) {
        return new SamplingDefaults(maxTokens, v, topP, topK, minP, seed, stop, presencePenalty, frequencyPenalty,
                repetitionPenalty, ignoreEos);
    }

    public SamplingDefaults withSeed(Long v) {
        return new SamplingDefaults(maxTokens, temperature, topP, topK, minP, v, stop, presencePenalty, frequencyPenalty,
                repetitionPenalty, ignoreEos);
    }

    /** A builder holding these settings, for per-row overrides. */
    public SamplingParams.Builder toBuilder() {
        return toBuilder(maxTokens, temperature, topP, topK, minP, seed, stop, presencePenalty, frequencyPenalty,
                repetitionPenalty, ignoreEos);
    }

    public SamplingParams toParams() {
        return toBuilder().build();
    }

    private static SamplingParams.Builder toBuilder(int maxTokens, double temperature, double topP, int topK,
                                                    double minP, Long seed, List<String> stop, double presencePenalty,
                                                    double frequencyPenalty, double repetitionPenalty,
                                                    boolean ignoreEos) {
        return SamplingParams.builder().maxTokens(maxTokens).temperature(temperature).topP(topP).topK(topK).minP(minP)
                .seed(seed).stop(stop).presencePenalty(presencePenalty).frequencyPenalty(frequencyPenalty)
                .repetitionPenalty(repetitionPenalty).ignoreEos(ignoreEos);
    }
}
