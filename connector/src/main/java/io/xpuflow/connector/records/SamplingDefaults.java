package io.xpuflow.connector.records;

import io.xpuflow.runtime.sample.SamplingParams;
import java.io.Serializable;
import java.util.List;
import java.util.Set;

/**
 * The sampling settings a job uses for every field a request leaves out, in a form Flink can ship to
 * its TaskManagers ({@link SamplingParams} itself is not {@link Serializable}).
 *
 * <p>The fields mirror {@link SamplingParams} and are validated by it, so defaults that no request
 * could use are refused when the job is built, not when the first record arrives. {@code seed} should
 * normally stay null: the engine then derives each request's seed from its id, so a request replayed
 * after a failure samples the same text. A fixed default seed is allowed (it is deterministic too) but
 * makes every request without a seed share one random stream start.
 */
public record SamplingDefaults(
        double temperature,
        double topP,
        int topK,
        double minP,
        double repetitionPenalty,
        double presencePenalty,
        double frequencyPenalty,
        int maxTokens,
        int minTokens,
        List<String> stop,
        Set<Integer> stopTokenIds,
        boolean ignoreEos,
        int logprobs,
        Long seed) implements Serializable {

    private static final long serialVersionUID = 1L;

    /** The engine's own defaults: greedy, 16 tokens, every filter and penalty off, id-derived seed. */
    public static final SamplingDefaults ENGINE = of(SamplingParams.builder().build());

    public SamplingDefaults {
        stop = stop == null ? List.of() : List.copyOf(stop);
        stopTokenIds = stopTokenIds == null ? Set.of() : Set.copyOf(stopTokenIds);
        // throws IllegalArgumentException naming the field, like a request with these values would
        new SamplingParams(temperature, topP, topK, minP, repetitionPenalty, presencePenalty, frequencyPenalty,
                maxTokens, minTokens, stop, stopTokenIds, ignoreEos, logprobs, seed);
    }

    /** The defaults equal to {@code params}. */
    public static SamplingDefaults of(SamplingParams p) {
        return new SamplingDefaults(p.temperature(), p.topP(), p.topK(), p.minP(), p.repetitionPenalty(),
                p.presencePenalty(), p.frequencyPenalty(), p.maxTokens(), p.minTokens(), p.stop(), p.stopTokenIds(),
                p.ignoreEos(), p.logprobs(), p.seed());
    }

    /** A builder preset with these defaults, for a request to override field by field. */
    public SamplingParams.Builder toBuilder() {
        return SamplingParams.builder().temperature(temperature).topP(topP).topK(topK).minP(minP)
                .repetitionPenalty(repetitionPenalty).presencePenalty(presencePenalty)
                .frequencyPenalty(frequencyPenalty).maxTokens(maxTokens).minTokens(minTokens).stop(stop)
                .stopTokenIds(stopTokenIds).ignoreEos(ignoreEos).logprobs(logprobs).seed(seed);
    }

    public SamplingParams toParams() {
        return toBuilder().build();
    }
}
