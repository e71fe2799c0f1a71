package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.PoisonedCheckpoint;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One request can never take the engine down: a request whose output cannot be produced fails alone,
 * what can be seen at submission is refused there, and an engine that fails as a whole is replaced.
 */
class RequestIsolationTest {
    /** Token whose embedding is NaN in the poisoned checkpoint. */
    static final int POISON = 5;

    @TempDir
    static Path tmp;
    static Path poisoned;
    static LlmEngine engine;

    @BeforeAll
    static void open() {
        poisoned = PoisonedCheckpoint.write(tmp, POISON);
        engine = LlmEngine.open(EngineOptions.builder(poisoned).threads(1).kvCacheBytes(4 << 20).maxModelLen(256).build());
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    static GenerationResult join(GenerationHandle h) {
        return h.result().orTimeout(60, TimeUnit.SECONDS).join();
    }

    static GenerationException failureOf(GenerationHandle h) {
        Throwable t = h.result().handle((r, e) -> e).orTimeout(60, TimeUnit.SECONDS).join();
        assertThat(t).as("request %s should have failed, got a result", h.id()).isNotNull();
        Throwable cause = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        assertThat(cause).isInstanceOf(GenerationException.class);
        return (GenerationException) cause;
    }

    static SamplingParams healthyParams() {
        return SamplingParams.builder().maxTokens(40).ignoreEos(true).temperature(0.9).seed(3L)
                .stopTokenIds(Set.of(POISON)).build(); // stops rather than feeds the poisoned token back
    }

    @Test
    void nanLogitsFailOnlyTheirRequestsWhileOthersRunAndTheEngineServesOn() throws InterruptedException {
        GenerationResult alone = join(engine.submit(GenerationRequest.ofTokens("healthy-alone", new int[] {1, 2, 3},
                healthyParams())));

        // a long healthy request, then poisoned ones of both kinds joining its batch
        GenerationHandle healthy = engine.submit(GenerationRequest.ofTokens("healthy", new int[] {1, 2, 3},
                healthyParams()));
        GenerationHandle sampled = engine.submit(GenerationRequest.ofTokens("nan-sampled", new int[] {1, POISON, 3},
                SamplingParams.builder().maxTokens(8).temperature(0.8).build()));
        GenerationHandle greedy = engine.submit(GenerationRequest.ofTokens("nan-greedy", new int[] {POISON},
                SamplingParams.greedy(8)));
        GenerationHandle logprobs = engine.submit(GenerationRequest.ofTokens("nan-logprobs", new int[] {2, POISON},
                SamplingParams.builder().maxTokens(8).temperature(0.5).topK(3).logprobs(2).build()));

        for (GenerationHandle bad : List.of(sampled, greedy, logprobs)) {
            GenerationException e = failureOf(bad);
            assertThat(e.code()).isEqualTo(GenerationException.Code.ENGINE_ERROR);
            assertThat(e.requestId()).isEqualTo(bad.id());
            assertThat(e).hasMessageContainingAll("sampling failed at output token 0", "non-finite logits", "NaN");
        }
        GenerationResult r = join(healthy);
        assertThat(r.tokenIds()).containsExactly(alone.tokenIds()); // batch-invariant, untouched by its neighbours
        assertThat(r.text()).isEqualTo(alone.text());

        assertThat(engine.isServing()).isTrue();
        assertThat(engine.failure()).isEmpty();
        // the engine goes on: its blocks, the poisoned sequences' ones included, serve later requests
        for (int i = 0; i < 6; i++) {
            assertThat(join(engine.submit(GenerationRequest.ofTokens("later-" + i, new int[] {1, 2, 3},
                    healthyParams()))).tokenIds()).containsExactly(alone.tokenIds());
        }
        // metrics are published by the loop between steps, just after the last result went out
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (engine.metrics().running() != 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(engine.metrics().running()).isZero();
    }

    @Test
    void aRequestThatCouldSampleNothingIsRefusedAtSubmit() {
        Set<Integer> all = new HashSet<>();
        for (int id = 0; id < PoisonedCheckpoint.VOCAB; id++) {
            all.add(id);
        }
        Set<Integer> allButEos = new HashSet<>(all);
        allButEos.remove(PoisonedCheckpoint.EOS);
        for (SamplingParams p : List.of(
                SamplingParams.builder().minTokens(1).maxTokens(4).temperature(0.7).stopTokenIds(all).build(),
                SamplingParams.builder().minTokens(2).maxTokens(4).stopTokenIds(all).build(), // greedy
                // eos is suppressed as well before min_tokens, unless ignored
                SamplingParams.builder().minTokens(1).maxTokens(4).temperature(1).stopTokenIds(allButEos).build())) {
            assertThatThrownBy(() -> engine.submit(GenerationRequest.ofTokens("all-suppressed", new int[] {1, 2}, p)))
                    .isInstanceOfSatisfying(GenerationException.class, e -> assertThat(e.code())
                            .isEqualTo(GenerationException.Code.INVALID_PARAM))
                    .hasMessageContainingAll("all-suppressed", "'min_tokens'", "'stop_token_ids'", "all 128 tokens");
        }
        // what is still possible is served: eos left free by ignore_eos, or stop ids without min_tokens
        GenerationResult eosOnly = join(engine.submit(GenerationRequest.ofTokens("eos-free", new int[] {1, 2},
                SamplingParams.builder().minTokens(1).maxTokens(4).temperature(1).stopTokenIds(allButEos)
                        .ignoreEos(true).build())));
        assertThat(eosOnly.tokenIds()[0]).isEqualTo(PoisonedCheckpoint.EOS);
        GenerationResult firstStops = join(engine.submit(GenerationRequest.ofTokens("stops", new int[] {1, 2},
                SamplingParams.builder().maxTokens(4).temperature(0.7).stopTokenIds(all).build())));
        assertThat(firstStops.finishReason()).isEqualTo(FinishReason.STOP);
        assertThat(firstStops.tokenIds()).hasSize(1);
        assertThat(engine.isServing()).isTrue();
    }
}
