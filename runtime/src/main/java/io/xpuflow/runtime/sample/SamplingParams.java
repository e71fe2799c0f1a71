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
    public static final int MAX_LOGPROBS = 20;

    public SamplingParams {
        stop = stop == null ? List.of() : List.copyOf(stop);
        stopTokenIds = stopTokenIds == null ? Set.of() : Set.copyOf(stopTokenIds);
        check(Double.isFinite(temperature) && temperature >= 0, "temperature", temperature, "a finite number >= 0");
        check(topP > 0 && topP <= 1, "top_p", topP, "in (0, 1]");
        check(topK >= 0, "top_k", topK, ">= 0 (0 turns it off)");
        check(minP >= 0 && minP <= 1, "min_p", minP, "in [0, 1]");
        check(Double.isFinite(repetitionPenalty) && repetitionPenalty > 0, "repetition_penalty", repetitionPenalty, "> 0");
        check(presencePenalty >= -2 && presencePenalty <= 2, "presence_penalty", presencePenalty, "in [-2, 2]");
        check(frequencyPenalty >= -2 && frequencyPenalty <= 2, "frequency_penalty", frequencyPenalty, "in [-2, 2]");
        check(maxTokens >= 1, "max_tokens", maxTokens, ">= 1");
        check(minTokens >= 0 && minTokens <= maxTokens, "min_tokens", minTokens, "in [0, max_tokens]");
        check(logprobs >= 0 && logprobs <= MAX_LOGPROBS, "logprobs", logprobs, "in [0, " + MAX_LOGPROBS + "]");
        for (String s : stop) {
            check(s != null && !s.isEmpty(), "stop", s, "non-empty strings");
        }
    }

    private static void check(boolean ok, String field, Object value, String rule) {
        if (!ok) {
            throw new IllegalArgumentException("'" + field + "' must be " + rule + ", was " + value);
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

    /** Defaults: greedy, 16 tokens, every filter and penalty off. */
    public static final class Builder {
        private double temperature = 0;
        private double topP = 1;
        private int topK = 0;
        private double minP = 0;
        private double repetitionPenalty = 1;
        private double presencePenalty = 0;
        private double frequencyPenalty = 0;
        private int maxTokens = 16;
        private int minTokens = 0;
        private List<String> stop = List.of();
        private Set<Integer> stopTokenIds = Set.of();
        private boolean ignoreEos;
        private int logprobs;
        private Long seed;

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
