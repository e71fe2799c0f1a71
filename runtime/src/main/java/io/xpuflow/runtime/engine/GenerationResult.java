package io.xpuflow.runtime.engine;

import java.util.List;

/**
 * A finished generation.
 *
 * @param text the generated text (stop strings excluded); empty when the model has no tokenizer
 * @param tokenIds the generated token ids (a matched stop string's tokens included, as in vLLM)
 * @param logprobs one entry per generated token when the request asked for log-probabilities, else empty
 */
public record GenerationResult(String id, String text, int[] tokenIds, FinishReason finishReason, Usage usage,
                               Timings timings, List<TokenLogprob> logprobs) {

    public GenerationResult {
        tokenIds = tokenIds.clone();
        logprobs = List.copyOf(logprobs);
    }

    @Override
    public int[] tokenIds() {
        return tokenIds.clone();
    }

    /**
     * Token counts and KV memory of the request.
     *
     * @param cachedPromptTokens prompt tokens whose KV came from the prefix cache (not computed)
     * @param peakKvBytes most KV memory the request held at once
     * @param peakKvBlocks most KV blocks held at once, per KV group (see {@link LlmEngine#kvGroups()})
     * @param preemptions times the request was preempted and later recomputed
     * @param draftTokens speculative draft tokens proposed for the request and verified by the target
     *     model (0 when not speculating)
     * @param acceptedTokens of those, the ones the verification accepted; each is a generated token that
     *     took no forward pass of its own (0 when not speculating)
     */
    public record Usage(int promptTokens, int completionTokens, int cachedPromptTokens, long peakKvBytes,
                        int[] peakKvBlocks, int preemptions, int draftTokens, int acceptedTokens) {
        public Usage {
            peakKvBlocks = peakKvBlocks.clone();
            if (acceptedTokens < 0 || draftTokens < acceptedTokens) {
                throw new IllegalArgumentException("need 0 <= acceptedTokens <= draftTokens, was "
                        + acceptedTokens + " of " + draftTokens);
            }
        }

        /** Usage of a request decoded without speculation: no draft and no accepted tokens. */
        public Usage(int promptTokens, int completionTokens, int cachedPromptTokens, long peakKvBytes,
                     int[] peakKvBlocks, int preemptions) {
            this(promptTokens, completionTokens, cachedPromptTokens, peakKvBytes, peakKvBlocks, preemptions, 0, 0);
        }

        @Override
        public int[] peakKvBlocks() {
            return peakKvBlocks.clone();
        }
    }

    /**
     * Wall-clock milestones of the request in milliseconds.
     *
     * @param queueMs from submission to its first scheduled step
     * @param timeToFirstTokenMs from submission to the first generated token
     * @param timePerOutputTokenMs mean time between generated tokens after the first (0 with one token)
     * @param totalMs from submission to the end
     */
    public record Timings(double queueMs, double timeToFirstTokenMs, double timePerOutputTokenMs, double totalMs) {}

    /** Log-probability of a generated token and of the most likely alternatives, best first. */
    public record TokenLogprob(int tokenId, float logprob, int[] topIds, float[] topLogprobs) {}
}
