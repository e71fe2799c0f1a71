package io.xpuflow.cli;

import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The workload of the benchmarks. By default synthetic, like vLLM's "random" dataset: prompts of exactly
 * {@code inputLen} random token ids and {@code outputLen} generated tokens each (end-of-sequence
 * ignored), greedy, so every run of the same arguments does the same work. With {@code promptIds} every
 * request has that prompt instead (real text, {@code --prompt}): what the model then generates is text it
 * predicts well, which is what speculative decoding's acceptance depends on.
 *
 * @param promptIds the prompt of every request, or null for random prompts of {@code inputLen} tokens
 */
record BenchWorkload(int numPrompts, int inputLen, int outputLen, long seed, int[] promptIds) {
    BenchWorkload {
        if (numPrompts <= 0 || inputLen <= 0 || outputLen <= 0) {
            throw new IllegalArgumentException("--num-prompts, --input-len and --output-len must be positive, were "
                    + numPrompts + ", " + inputLen + ", " + outputLen);
        }
        if (promptIds != null && promptIds.length != inputLen) {
            throw new IllegalArgumentException("a fixed prompt of " + promptIds.length + " tokens with an input length of "
                    + inputLen);
        }
    }

    BenchWorkload(int numPrompts, int inputLen, int outputLen, long seed) {
        this(numPrompts, inputLen, outputLen, seed, null);
    }

    /** The same workload with {@code ids} as every request's prompt; the input length becomes theirs. */
    BenchWorkload withPrompt(int[] ids) {
        if (ids.length == 0) {
            throw new IllegalArgumentException("--prompt gives no tokens");
        }
        return new BenchWorkload(numPrompts, ids.length, outputLen, seed, ids.clone());
    }

    List<GenerationRequest> requests(int vocabSize) {
        SplittableRandom random = new SplittableRandom(seed);
        SamplingParams params = SamplingParams.builder().maxTokens(outputLen).ignoreEos(true).build();
        List<GenerationRequest> out = new ArrayList<>(numPrompts);
        for (int i = 0; i < numPrompts; i++) {
            int[] ids = promptIds;
            if (ids == null) {
                ids = new int[inputLen];
                for (int j = 0; j < inputLen; j++) {
                    ids[j] = random.nextInt(vocabSize);
                }
            }
            out.add(GenerationRequest.ofTokens("bench-" + i, ids, params));
        }
        return out;
    }

    long totalTokens() {
        return (long) numPrompts * (inputLen + outputLen);
    }

    long outputTokens() {
        return (long) numPrompts * outputLen;
    }
}
