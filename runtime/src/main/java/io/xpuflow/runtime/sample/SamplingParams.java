package io.xpuflow.runtime.sample;

import java.util.List;
import java.util.Set;

/**
 * How one request turns logits into tokens, with the field names and meanings of OpenAI / vLLM.
 *
 * @param temperature 0 decodes greedily; otherwise logits are divided by it before sampling
 * @param topP keep the smallest set of most likely tokens whose probability reaches topP (1: off)
 * @param topK keep the topK most likely tokens (0: off)
 * @param minP drop tokens less likely than minP times the most likely one (0: off)
 * @param repetitionPenalty divides positive (multiplies negative) logits of tokens seen in the prompt
 *     or the output (1: off)
 * @param presencePenalty subtracted once from the logit of every token already generated
 * @param frequencyPenalty subtracted from a token's logit once per time it was generated
 * @param maxTokens tokens to generate at most
 * @param minTokens end-of-sequence and stop tokens are suppressed until this many were generated
 * @param stop strings that end the generation (not included in the text)
 * @param stopTokenIds token ids that end the generation
 * @param ignoreEos keep going past end-of-sequence tokens
 * @param logprobs how many top alternatives to report with each token's log-probability (0: none)
 * @param seed seed of the request's random generator; null draws one from the request id
 */
public record SamplingParams(
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
        Long seed) {

    /** Most alternatives one token may report. */
    public static final int MAX_LOGPROBS = SamplingOptionDefs.MAX_LOGPROBS;

    public SamplingParams {
        stop = stop == null ? List.of() : List.copyOf(stop);
        stopTokenIds = stopTokenIds == null ? Set.of() : Set.copyOf(stopTokenIds);
        // one value at a time: the rules of the option definitions, as every surface applies them
        SamplingOptionDefs.TEMPERATURE.check(temperature);
        SamplingOptionDefs.TOP_P.check(topP);
        SamplingOptionDefs.TOP_K.check(topK);
        SamplingOptionDefs.MIN_P.check(minP);
        SamplingOptionDefs.REPETITION_PENALTY.check(repetitionPenalty);
        SamplingOptionDefs.PRESENCE_PENALTY.check(presencePenalty);
        SamplingOptionDefs.FREQUENCY_PENALTY.check(frequencyPenalty);
        SamplingOptionDefs.MAX_TOKENS.check(maxTokens);
        SamplingOptionDefs.MIN_TOKENS.check(minTokens);
        SamplingOptionDefs.LOGPROBS.check(logprobs);
        SamplingOptionDefs.STOP.check(stop);
        SamplingOptionDefs.STOP_TOKEN_IDS.check(List.copyOf(stopTokenIds));
        // two fields at once
        if (minTokens > maxTokens) {
            throw new IllegalArgumentException("'min_tokens' must be in [0, max_tokens], was " + minTokens);
        }
    }

    /** Greedy decoding of up to {@code maxTokens} tokens. */
    public static SamplingParams greedy(int maxTokens) {
        return builder().maxTokens(maxTokens).build();
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    /** Whether a token's score depends on the request's history (repetition, presence or frequency penalty). */
    public boolean hasPenalties() {
        return repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0;
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Defaults: those of {@link SamplingOptionDefs} (greedy, 16 tokens, every filter and penalty off, a seed
     * derived from the request id).
     */
    public static final class Builder {
        private double temperature = SamplingOptionDefs.TEMPERATURE.defaultValue();
        private double topP = SamplingOptionDefs.TOP_P.defaultValue();
        private int topK = SamplingOptionDefs.TOP_K.defaultValue();
        private double minP = SamplingOptionDefs.MIN_P.defaultValue();
        private double repetitionPenalty = SamplingOptionDefs.REPETITION_PENALTY.defaultValue();
        private double presencePenalty = SamplingOptionDefs.PRESENCE_PENALTY.defaultValue();
        private double frequencyPenalty = SamplingOptionDefs.FREQUENCY_PENALTY.defaultValue();
        private int maxTokens = SamplingOptionDefs.MAX_TOKENS.defaultValue();
        private int minTokens = SamplingOptionDefs.MIN_TOKENS.defaultValue();
        private List<String> stop = SamplingOptionDefs.STOP.defaultValue();
        private Set<Integer> stopTokenIds = Set.copyOf(SamplingOptionDefs.STOP_TOKEN_IDS.defaultValue());
        private boolean ignoreEos = SamplingOptionDefs.IGNORE_EOS.defaultValue();
        private int logprobs = SamplingOptionDefs.LOGPROBS.defaultValue();
        private Long seed = SamplingOptionDefs.SEED.defaultValue();

        private Builder() {}

        public Builder temperature(double v) { temperature = v; return this; }
        public Builder topP(double v) { topP = v; return this; }
        public Builder topK(int v) { topK = v; return this; }
        public Builder minP(double v) { minP = v; return this; }
        public Builder repetitionPenalty(double v) { repetitionPenalty = v; return this; }
        public Builder presencePenalty(double v) { presencePenalty = v; return this; }
        public Builder frequencyPenalty(double v) { frequencyPenalty = v; return this; }
        public Builder maxTokens(int v) { maxTokens = v; return this; }
        public Builder minTokens(int v) { minTokens = v; return this; }
        public Builder stop(List<String> v) { stop = v; return this; }
        public Builder stopTokenIds(Set<Integer> v) { stopTokenIds = v; return this; }
        public Builder ignoreEos(boolean v) { ignoreEos = v; return this; }
        public Builder logprobs(int v) { logprobs = v; return this; }
        public Builder seed(Long v) { seed = v; return this; }

        public SamplingParams build() {
            return new SamplingParams(temperature, topP, topK, minP, repetitionPenalty, presencePenalty,
                    frequencyPenalty, maxTokens, minTokens, stop, stopTokenIds, ignoreEos, logprobs, seed);
        }
    }
}
