package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How much the engine's loop thread allocates on the Java heap per decode step in steady state,
 * measured with the JVM's per-thread allocation counter from inside the loop thread (the token
 * listener runs there). KV cache, step buffers and sampler scratch are allocated when the engine opens;
 * what remains per step is the sampled-token record, penalties' history and the detokenised text.
 */
class SteadyStateAllocationTest {
    private static final Logger LOG = LoggerFactory.getLogger(SteadyStateAllocationTest.class);

    @Test
    void decodeStepsAllocateOnlySmallPerTokenObjects(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        // the same model without its tokenizer: token ids in, token ids out, no text
        java.nio.file.Path stories = Fixtures.model("stories260k");
        for (String f : new String[] {"config.json", "model.safetensors"}) {
            java.nio.file.Files.copy(stories.resolve(f), tmp.resolve(f));
        }
        for (boolean withText : new boolean[] {false, true}) {
            measure(withText ? stories : tmp, withText);
        }
    }

    private static void measure(java.nio.file.Path model, boolean withText) throws Exception {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        int seqs = 8;
        long[] at = new long[2];
        try (LlmEngine engine = LlmEngine.open(EngineOptions.builder(model).threads(1)
                .kvCacheBytes(32 << 20).build())) {
            {
                List<GenerationHandle> handles = new ArrayList<>();
                int[] count = {0};
                for (int i = 0; i < seqs; i++) {
                    SamplingParams p = SamplingParams.builder().maxTokens(300).ignoreEos(true)
                            .temperature(i % 2 == 0 ? 0 : 0.8).topP(0.95).build();
                    TokenListener listener = i != 0 ? TokenListener.NONE : (id, text) -> {
                        // request 0 gets one token per step once every request decodes
                        if (++count[0] == 100) {
                            at[0] = threads.getCurrentThreadAllocatedBytes();
                        } else if (count[0] == 200) {
                            at[1] = threads.getCurrentThreadAllocatedBytes();
                        }
                    };
                    GenerationRequest r = withText
                            ? GenerationRequest.ofText("a" + i, "Once upon a time " + i, p)
                            : GenerationRequest.ofTokens("a" + i, new int[] {1, 10 + i}, p);
                    handles.add(engine.submit(r, listener));
                }
                for (GenerationHandle h : handles) {
                    h.result().get(60, TimeUnit.SECONDS);
                }
                double perSeqStep = (at[1] - at[0]) / 100.0 / seqs;
                LOG.info("Loop thread allocates {} bytes per sequence per decode step ({})", perSeqStep,
                        withText ? "with detokenisation" : "token ids only");
                // a few short-lived objects per token (the sample, history entries, text chunks); nothing that
                // grows with the model, the vocabulary or the batch
                assertThat(perSeqStep).isLessThan(withText ? 4096 : 512);
            }
        }
    }
}
