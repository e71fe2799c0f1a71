package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.model.LoadOptions;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.model.ModelRunner;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class LlmEngineTest {
    private static final Path STORIES = Fixtures.model("stories260k");
    private static LlmEngine engine;

    @BeforeAll
    static void open() {
        engine = LlmEngine.open(EngineOptions.builder(STORIES).threads(2).build());
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    private static GenerationResult run(LlmEngine e, GenerationRequest r) {
        return e.submit(r).result().orTimeout(60, TimeUnit.SECONDS).join();
    }

    @Test
    void greedyFromBosReproducesRunC() throws Exception {
        String golden = Files.readString(STORIES.resolve("greedy-from-bos-256.txt"), StandardCharsets.UTF_8);
        // run.c feeds BOS at position 0 and prints the token chosen at each of positions 0..255 (steps = 256)
        GenerationResult r = run(engine, GenerationRequest.ofTokens("bos", new int[] {1},
                SamplingParams.builder().maxTokens(256).ignoreEos(true).build()));
        assertThat(r.text()).isEqualTo(golden);
        assertThat(r.tokenIds()).hasSize(256);
        assertThat(r.finishReason()).isEqualTo(FinishReason.LENGTH);
    }

    @Test
    void greedyEqualsTheScoringRunner() {
        int[] prompt = engine.tokenizer().orElseThrow().encode("Lily went to the park with her dog", true);
        GenerationResult r = run(engine, GenerationRequest.ofTokens("g", prompt,
                SamplingParams.builder().maxTokens(40).ignoreEos(true).build()));
        try (LoadedModel m = LoadedModel.load(STORIES, new LoadOptions(1, 64, 1));
             ModelRunner runner = new ModelRunner(m, 128, 1)) {
            assertThat(r.tokenIds()).containsExactly(runner.generateGreedy(prompt, 40, true));
        }
    }

    /** Mixed lengths and sampling parameters; each request's own seed. */
    static List<GenerationRequest> mixedRequests(int n, long seed) {
        Random rnd = new Random(seed);
        String[] starts = {"Once upon a time", "Tom had a red ball", "The sun was", "Lily and Ben", "A little bird",
                "One day, a big dog named Max went to the park and saw a cat. The cat was"};
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            SamplingParams.Builder b = SamplingParams.builder().maxTokens(1 + rnd.nextInt(60));
            switch (i % 4) {
                case 0 -> { }
                case 1 -> b.temperature(0.8).topP(0.9).seed((long) i);
                case 2 -> b.temperature(1.0).topK(20).minP(0.05).repetitionPenalty(1.2).seed(1000L + i);
                default -> b.temperature(0.7).presencePenalty(0.5).frequencyPenalty(0.3).ignoreEos(true);
            }
            String text = starts[rnd.nextInt(starts.length)];
            out.add(i % 3 == 0 ? GenerationRequest.ofText("r" + i, text, b.build())
                    : GenerationRequest.ofTokens("r" + i, engine.tokenizer().orElseThrow().encode(text + " " + i, true), b.build()));
        }
        return out;
    }

    @Test
    void concurrentRequestsEqualTheirSoloRuns() {
        List<GenerationRequest> requests = mixedRequests(64, 7);
        List<GenerationResult> solo = new ArrayList<>();
        try (LlmEngine fresh = LlmEngine.open(EngineOptions.builder(STORIES).threads(2).enablePrefixCaching(false).build())) {
            for (GenerationRequest r : requests) {
                solo.add(run(fresh, r));
            }
        }
        List<GenerationHandle> handles = requests.stream().map(engine::submit).toList();
        for (int i = 0; i < requests.size(); i++) {
            GenerationResult together = handles.get(i).result().orTimeout(60, TimeUnit.SECONDS).join();
            assertThat(together.tokenIds()).as(requests.get(i).toString()).containsExactly(solo.get(i).tokenIds());
            assertThat(together.text()).isEqualTo(solo.get(i).text());
            assertThat(together.finishReason()).isEqualTo(solo.get(i).finishReason());
        }
    }

    @Test
    void tooSmallKvBudgetFinishesEverythingThroughPreemption() {
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            requests.add(GenerationRequest.ofTokens("p" + i, new int[] {1, 100 + i, 200 + i},
                    SamplingParams.builder().maxTokens(100 + 10 * i).ignoreEos(true).temperature(i % 2 == 0 ? 0 : 0.9)
                            .seed((long) i).build()));
        }
        List<GenerationResult> solo = requests.stream().map(r -> run(engine, r)).toList();
        // 5 layers x 4 KV heads x (8 + 8) x 4 bytes x 16 tokens = 20 KiB per block: 40 blocks hold 640 tokens,
        // while the 12 requests need 12 x ~160 tokens at once
        long blockBytes = 5L * 4 * 16 * 4 * 16;
        try (LlmEngine small = LlmEngine.open(EngineOptions.builder(STORIES).threads(2).maxModelLen(256)
                .kvCacheBytes(40 * blockBytes).build())) {
            assertThat(small.kvBlocks()).containsExactly(40);
            List<GenerationHandle> handles = requests.stream().map(small::submit).toList();
            for (int i = 0; i < requests.size(); i++) {
                GenerationResult r = handles.get(i).result().orTimeout(120, TimeUnit.SECONDS).join();
                assertThat(r.tokenIds()).as("request %d", i).containsExactly(solo.get(i).tokenIds());
            }
            assertThat(small.metrics().preemptions()).isPositive();
            assertThat(handles.stream().mapToInt(h -> h.result().join().usage().preemptions()).sum()).isPositive();
            awaitIdle(small);
            assertThat(small.metrics().kvBlocksUsed()).isZero();
        }
    }

    @Test
    void slidingWindowGroupsStayBoundedByWindowPlusOneChunk() {
        Path mimo = Fixtures.model("tiny-mimo-v2");
        int chunk = 24;
        try (LlmEngine e = LlmEngine.open(EngineOptions.builder(mimo).threads(2).blockSize(4).maxNumBatchedTokens(chunk)
                .build())) {
            int[] groups = e.kvGroups();
            int[] prompt = new int[100];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = (i * 37 + 11) % 512;
            }
            GenerationResult r = run(e, GenerationRequest.ofTokens("long", prompt,
                    SamplingParams.builder().maxTokens(200).ignoreEos(true).build()));
            int length = prompt.length + r.tokenIds().length;
            assertThat(length).isEqualTo(300);
            int[] peak = r.usage().peakKvBlocks();
            assertThat(groups).contains(0);
            assertThat(java.util.Arrays.stream(groups).anyMatch(w -> w > 0)).isTrue();
            for (int g = 0; g < groups.length; g++) {
                if (groups[g] > 0) {
                    int bound = (groups[g] - 1 + chunk + 3) / 4 + 1;
                    assertThat(peak[g]).as("sliding group %d (window %d)", g, groups[g]).isLessThanOrEqualTo(bound);
                } else {
                    assertThat(peak[g]).as("full group %d", g).isEqualTo((length - 1 + 3) / 4);
                }
            }
            // same tokens as the plain runner that keeps every block
            try (LoadedModel m = LoadedModel.load(mimo, new LoadOptions(1, 64, 1));
                 ModelRunner runner = new ModelRunner(m, 320, 1)) {
                assertThat(r.tokenIds()).containsExactly(runner.generateGreedy(prompt, 200, true));
            }
        }
    }

    @Test
    void prefixCacheReusesFullBlocksAndGivesTheSameTokens() {
        int[] shared = engine.tokenizer().orElseThrow().encode(
                "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.", true);
        GenerationResult first = run(engine, GenerationRequest.ofTokens("a", shared, SamplingParams.greedy(20)));
        long hitsBefore = engine.metrics().prefixCacheHitTokens();
        GenerationResult second = run(engine, GenerationRequest.ofTokens("b", shared, SamplingParams.greedy(20)));
        assertThat(second.usage().cachedPromptTokens()).isEqualTo((shared.length - 1) / 16 * 16).isPositive();
        assertThat(second.tokenIds()).containsExactly(first.tokenIds());
        awaitMetrics(engine, m -> m.prefixCacheHitTokens() >= hitsBefore + second.usage().cachedPromptTokens());
    }

    @Test
    void prefixCacheOnAHybridModelKeepsTheWindowsBlocksAndTheTokens() {
        Path mimo = Fixtures.model("tiny-mimo-v2");
        int[] prompt = new int[70];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = (i * 13 + 5) % 512;
        }
        try (LlmEngine e = LlmEngine.open(EngineOptions.builder(mimo).threads(1).blockSize(4).maxNumBatchedTokens(16).build());
             LlmEngine plain = LlmEngine.open(EngineOptions.builder(mimo).threads(1).blockSize(4).enablePrefixCaching(false)
                     .build())) {
            GenerationResult first = run(e, GenerationRequest.ofTokens("h1", prompt, SamplingParams.greedy(12)));
            GenerationResult second = run(e, GenerationRequest.ofTokens("h2", prompt, SamplingParams.greedy(12)));
            // 69 tokens before the last one: 17 whole blocks of 4 reused
            assertThat(second.usage().cachedPromptTokens()).isEqualTo(68);
            GenerationResult reference = run(plain, GenerationRequest.ofTokens("h3", prompt, SamplingParams.greedy(12)));
            assertThat(first.tokenIds()).containsExactly(reference.tokenIds());
            assertThat(second.tokenIds()).containsExactly(reference.tokenIds());
        }
    }

    @Test
    void streamsEveryTokenAndTheDeltasAddUpToTheText() {
        List<Integer> ids = new CopyOnWriteArrayList<>();
        StringBuilder text = new StringBuilder();
        GenerationResult r = engine.submit(GenerationRequest.ofText("s", "Tom had a red ball",
                        SamplingParams.builder().maxTokens(50).temperature(0.9).seed(3L).stop(List.of("ball.", "\n")).build()),
                (id, delta) -> {
                    ids.add(id);
                    synchronized (text) {
                        text.append(delta);
                    }
                }).result().join();
        assertThat(ids).containsExactlyElementsOf(toList(r.tokenIds()));
        assertThat(text.toString()).isEqualTo(r.text());
    }

    @Test
    void stopStringsEndTheTextBeforeTheStop() {
        GenerationResult all = run(engine, GenerationRequest.ofTokens("x", new int[] {1}, SamplingParams.greedy(60)));
        String stop = "Lily";
        int at = all.text().indexOf(stop);
        assertThat(at).isPositive();
        GenerationResult stopped = run(engine, GenerationRequest.ofTokens("y", new int[] {1},
                SamplingParams.builder().maxTokens(60).stop(List.of(stop)).build()));
        assertThat(stopped.text()).isEqualTo(all.text().substring(0, at));
        assertThat(stopped.finishReason()).isEqualTo(FinishReason.STOP);
        assertThat(stopped.tokenIds().length).isLessThan(all.tokenIds().length);
    }

    @Test
    void stopTokenIdsMinTokensAndMaxTokens() {
        GenerationResult all = run(engine, GenerationRequest.ofTokens("t", new int[] {1}, SamplingParams.greedy(30)));
        int third = all.tokenIds()[2];
        GenerationResult stopped = run(engine, GenerationRequest.ofTokens("t2", new int[] {1},
                SamplingParams.builder().maxTokens(30).stopTokenIds(Set.of(third)).build()));
        assertThat(stopped.tokenIds()).hasSizeLessThanOrEqualTo(3).endsWith(third);
        assertThat(stopped.finishReason()).isEqualTo(FinishReason.STOP);
        GenerationResult atLeast = run(engine, GenerationRequest.ofTokens("t3", new int[] {1},
                SamplingParams.builder().maxTokens(30).minTokens(10).stopTokenIds(Set.of(third)).build()));
        assertThat(atLeast.tokenIds().length).isGreaterThanOrEqualTo(10);
        assertThat(java.util.Arrays.stream(atLeast.tokenIds()).limit(9)).doesNotContain(third);
        GenerationResult one = run(engine, GenerationRequest.ofTokens("t4", new int[] {1}, SamplingParams.greedy(1)));
        assertThat(one.tokenIds()).hasSize(1);
        assertThat(one.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(one.usage().promptTokens()).isEqualTo(1);
        assertThat(one.usage().completionTokens()).isEqualTo(1);
    }

    @Test
    void logprobsAreReportedPerToken() {
        GenerationResult r = run(engine, GenerationRequest.ofTokens("lp", new int[] {1},
                SamplingParams.builder().maxTokens(5).logprobs(3).build()));
        assertThat(r.logprobs()).hasSize(5);
        for (int i = 0; i < 5; i++) {
            GenerationResult.TokenLogprob lp = r.logprobs().get(i);
            assertThat(lp.tokenId()).isEqualTo(r.tokenIds()[i]);
            assertThat(lp.topIds()).hasSize(3).startsWith(lp.tokenId()); // greedy picks the most likely
            assertThat(lp.logprob()).isLessThanOrEqualTo(0f).isEqualTo(lp.topLogprobs()[0]);
        }
    }

    @Test
    void cancelEndsARunningRequestAndFreesItsBlocks() throws Exception {
        java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(3);
        GenerationHandle h = engine.submit(GenerationRequest.ofTokens("c", new int[] {1},
                SamplingParams.builder().maxTokens(400).ignoreEos(true).build()), (id, d) -> started.countDown());
        assertThat(started.await(30, TimeUnit.SECONDS)).isTrue();
        h.cancel();
        GenerationResult r = h.result().get(30, TimeUnit.SECONDS);
        assertThat(r.finishReason()).isEqualTo(FinishReason.CANCELLED);
        assertThat(r.tokenIds().length).isBetween(3, 399);
        GenerationHandle viaFuture = engine.submit(GenerationRequest.ofTokens("c2", new int[] {1},
                SamplingParams.builder().maxTokens(400).ignoreEos(true).build()));
        viaFuture.result().cancel(true);
        awaitIdle(engine);
        assertThat(engine.metrics().kvBlocksUsed()).isZero();
    }

    @Test
    void invalidRequestsAreRejectedWithACode() {
        assertThatThrownBy(() -> engine.submit(GenerationRequest.ofTokens("big", new int[] {1, 512}, SamplingParams.greedy(4))))
                .isInstanceOfSatisfying(GenerationException.class, e -> assertThat(e.code())
                        .isEqualTo(GenerationException.Code.INVALID_PARAM))
                .hasMessageContaining("512").hasMessageContaining("position 1");
        assertThatThrownBy(() -> engine.submit(GenerationRequest.ofTokens("empty", new int[0], SamplingParams.greedy(4))))
                .isInstanceOf(GenerationException.class).hasMessageContaining("empty");
        int[] tooLong = new int[engine.maxModelLen()];
        java.util.Arrays.fill(tooLong, 5);
        assertThatThrownBy(() -> engine.submit(GenerationRequest.ofTokens("long", tooLong, SamplingParams.greedy(4))))
                .isInstanceOfSatisfying(GenerationException.class, e -> assertThat(e.code())
                        .isEqualTo(GenerationException.Code.PROMPT_TOO_LONG))
                .hasMessageContaining(engine.maxModelLen() + " tokens");
        assertThatThrownBy(() -> engine.submit(GenerationRequest.ofMessages("chat",
                List.of(io.xpuflow.runtime.tokenizer.ChatMessage.user("hi")), SamplingParams.greedy(4))))
                .isInstanceOf(GenerationException.class).hasMessageContaining("no chat template");
    }

    @Test
    @org.junit.jupiter.api.Timeout(value = 60, threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
    void aHostileChatTemplateRejectsTheRequestNotTheEngine(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        // the model's own template: harmless when loaded, a billion iterations once there are messages
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) {
            Files.copy(STORIES.resolve(f), dir.resolve(f));
        }
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": \"{% for m in messages %}"
                + "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{{ '' }}{% endfor %}"
                + "{% endfor %}{% endfor %}{% endfor %}\"}");
        try (LlmEngine e = LlmEngine.open(EngineOptions.builder(dir).threads(1).build())) {
            long start = System.nanoTime();
            assertThatThrownBy(() -> e.submit(GenerationRequest.ofMessages("chat",
                    List.of(io.xpuflow.runtime.tokenizer.ChatMessage.user("hi")), SamplingParams.greedy(4))))
                    .isInstanceOfSatisfying(GenerationException.class, ex -> assertThat(ex.code())
                            .isEqualTo(GenerationException.Code.INVALID_PARAM))
                    .hasMessageMatching(".*chat template.*over the (time|memory) limit.*");
            assertThat(System.nanoTime() - start).isLessThan(TimeUnit.SECONDS.toNanos(10));
            // the engine goes on serving
            assertThat(run(e, GenerationRequest.ofTokens("after", new int[] {1, 2, 3}, SamplingParams.greedy(4)))
                    .tokenIds()).hasSize(4);
        }
    }

    @Test
    void generationStopsAtTheMaxModelLength() {
        try (LlmEngine e = LlmEngine.open(EngineOptions.builder(STORIES).threads(1).maxModelLen(40).build())) {
            GenerationResult r = run(e, GenerationRequest.ofTokens("m", new int[] {1, 2, 3, 4, 5},
                    SamplingParams.builder().maxTokens(100).ignoreEos(true).build()));
            assertThat(r.tokenIds()).hasSize(35);
            assertThat(r.finishReason()).isEqualTo(FinishReason.LENGTH);
        }
    }

    @Test
    void closeFailsUnfinishedRequestsAndRefusesNewOnes() {
        LlmEngine e = LlmEngine.open(EngineOptions.builder(STORIES).threads(1).build());
        GenerationHandle h = e.submit(GenerationRequest.ofTokens("z", new int[] {1},
                SamplingParams.builder().maxTokens(400).ignoreEos(true).build()));
        e.close();
        assertThat(h.result()).failsWithin(10, TimeUnit.SECONDS).withThrowableOfType(java.util.concurrent.ExecutionException.class)
                .havingCause().isInstanceOfSatisfying(GenerationException.class, ex -> assertThat(ex.code())
                        .isIn(GenerationException.Code.ENGINE_CLOSED));
        assertThatThrownBy(() -> e.submit(GenerationRequest.ofTokens("late", new int[] {1}, SamplingParams.greedy(1))))
                .isInstanceOfSatisfying(GenerationException.class, ex -> assertThat(ex.code())
                        .isEqualTo(GenerationException.Code.ENGINE_CLOSED));
        e.close(); // idempotent
    }

    @Test
    void kvBudgetTooSmallForOneSequenceIsAClearError() {
        assertThatThrownBy(() -> LlmEngine.open(EngineOptions.builder(STORIES).threads(1).maxModelLen(512)
                .kvCacheBytes(4096).build()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("max model length 512")
                .hasMessageContaining("MiB");
    }

    static void awaitIdle(LlmEngine e) {
        awaitMetrics(e, m -> m.running() == 0 && m.waiting() == 0 && m.kvBlocksUsed() == 0);
    }

    static void awaitMetrics(LlmEngine e, java.util.function.Predicate<EngineMetrics> condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.test(e.metrics())) {
            assertThat(System.nanoTime()).as("metrics never matched: %s", e.metrics()).isLessThan(deadline);
            try {
                Thread.sleep(10);
            } catch (InterruptedException ex) {
                throw new AssertionError(ex);
            }
        }
    }

    private static List<Integer> toList(int[] v) {
        return java.util.Arrays.stream(v).boxed().toList();
    }
}
