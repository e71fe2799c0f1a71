package io.xpuflow.cli;

import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The synthetic workload of the benchmarks, like vLLM's "random" dataset: prompts of exactly
 * {@code inputLen} random token ids and {@code outputLen} generated tokens each (end-of-sequence
 * ignored), greedy, so every run of the same arguments does the same work.
 */
record BenchWorkload(int numPrompts, int inputLen, int outputLen, long seed) {
    BenchWorkload {
        if (numPrompts <= 0 || inputLen <= 0 || outputLen <= 0) {
            throw new IllegalArgumentException("--num-prompts, --input-len and --output-len must be positive, were "
                    + numPrompts + ", " + inputLen + ", " + outputLen);
        }
    }

    List<GenerationRequest> requests(int vocabSize) {
        SplittableRandom random = new SplittableRandom(seed);
        SamplingParams params = SamplingParams.builder().maxTokens(outputLen).ignoreEos(true).build();
        List<GenerationRequest> out = new ArrayList<>(numPrompts);
        for (int i = 0; i < numPrompts; i++) {
            int[] ids = new int[inputLen];
            for (int j = 0; j < inputLen; j++) {
                ids[j] = random.nextInt(vocabSize);
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
