package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Speculative decoding through the whole engine: MTP and n-gram drafts scheduled with other requests,
 * verified, rolled back, preempted and cancelled; greedy output must equal plain decoding's token for
 * token, and the MTP drafts must be those of spec-decode.json.
 */
class SpeculativeEngineTest {
    static final String MTP_FIXTURE = "stories260k-mtp";
    /** A draft whose top-2 logit margin is below this may legitimately flip between implementations. */
    static final float FLIP_MARGIN = 0.01f;

    static EngineOptions.Builder options(String fixture) {
        return EngineOptions.builder(Fixtures.model(fixture)).threads(2).weightFormat(WeightFormat.EXACT)
                .logStatsInterval(java.time.Duration.ZERO);
    }

    static GenerationResult await(GenerationHandle h) {
        return h.result().orTimeout(120, TimeUnit.SECONDS).join();
    }

    static List<GenerationResult> runAll(LlmEngine e, List<GenerationRequest> requests) {
        List<GenerationHandle> hs = new ArrayList<>();
        for (GenerationRequest r : requests) {
            hs.add(e.submit(r));
        }
        List<GenerationResult> out = new ArrayList<>();
        for (GenerationHandle h : hs) {
            out.add(await(h));
        }
        return out;
    }

    static SamplingParams greedy(int maxTokens) {
        return SamplingParams.builder().maxTokens(maxTokens).ignoreEos(true).build();
    }

    /**
     * The engine's MTP drafts and accepted counts per verification step equal spec-decode.json's for all 8
     * prompts, decoded together in one batch, until a draft flips at a near tie (as the device-level
     * MtpChainTest allows); the continuation equals the reference's greedy tokens.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3})
    void mtpDraftsAndAcceptedCountsMatchSpecDecodeJson(int k) throws IOException {
        Path dir = Fixtures.model(MTP_FIXTURE);
        JsonNode spec = new ObjectMapper().readTree(dir.resolve("spec-decode.json").toFile());
        int nNew = spec.get("n_new").asInt();
        Map<String, List<int[]>> trace = new ConcurrentHashMap<>();
        int compared = 0;
        int total = 0;
        try (LlmEngine e = LlmEngine.open(options(MTP_FIXTURE).enablePrefixCaching(false)
                .speculative(SpeculativeConfig.mtp(k).withAdaptive(false)).build())) {
            e.verificationTrace((id, drafts, accepted) -> trace.computeIfAbsent(id, x -> new ArrayList<>())
                    .add(append(drafts, accepted)));
            List<GenerationRequest> reqs = new ArrayList<>();
            int i = 0;
            for (JsonNode p : spec.get("prompts")) {
                // room past n_new so the drafts of the last reference steps are not cut by max_tokens
                reqs.add(GenerationRequest.ofTokens("p" + i++, MtpChainTestInts.ints(p.get("ids")), greedy(nNew + 8)));
            }
            List<GenerationResult> results = runAll(e, reqs);
            i = 0;
            for (JsonNode p : spec.get("prompts")) {
                JsonNode want = p.get("k" + k);
                GenerationResult r = results.get(i);
                assertThat(Arrays.copyOf(r.tokenIds(), nNew)).as("p%d continuation", i)
                        .containsExactly(Arrays.copyOf(MtpChainTestInts.ints(p.get("greedy")), nNew));
                List<int[]> got = trace.get("p" + i);
                int steps = want.get("accepted").size();
                total += steps;
                for (int s = 0; s < steps; s++) {
                    int[] wantDrafts = MtpChainTestInts.ints(want.get("drafts").get(s));
                    int[] gotDrafts = Arrays.copyOf(got.get(s), k);
                    int flip = firstDifference(gotDrafts, wantDrafts);
                    if (flip >= 0) {
                        assertThat(want.get("draft_margins").get(s).get(flip).asDouble())
                                .as("p%d k %d step %d: drafts %s, spec-decode.json %s", i, k, s,
                                        Arrays.toString(gotDrafts), Arrays.toString(wantDrafts))
                                .isLessThan(FLIP_MARGIN);
                        break;
                    }
                    assertThat(got.get(s)[k]).as("p%d k %d step %d accepted", i, k, s)
                            .isEqualTo(want.get("accepted").get(s).asInt());
                    compared++;
                }
                assertThat(r.usage().acceptedTokens()).isLessThanOrEqualTo(r.usage().draftTokens());
                assertThat(r.usage().completionTokens()).isEqualTo(r.tokenIds().length).isEqualTo(nNew + 8);
                i++;
            }
            EngineMetrics m = e.metrics();
            System.out.printf("[spec-engine] k=%d: %d of %d reference steps compared; %s%n", k, compared, total,
                    m.speculative());
        }
        assertThat(compared).isGreaterThan(total / 2);
    }

    static int[] append(int[] a, int v) {
        int[] out = Arrays.copyOf(a, a.length + 1);
        out[a.length] = v;
        return out;
    }

    static int firstDifference(int[] a, int[] b) {
        for (int i = 0; i < Math.min(a.length, b.length); i++) {
            if (a[i] != b[i]) {
                return i;
            }
        }
        return a.length == b.length ? -1 : Math.min(a.length, b.length);
    }

    /** Small helpers to read spec-decode.json. */
    static final class MtpChainTestInts {
        static int[] ints(JsonNode a) {
            int[] out = new int[a.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = a.get(i).asInt();
            }
            return out;
        }
    }

    static List<GenerationRequest> goldenRequests(String fixture, int maxTokens, String prefix) {
        List<GenerationRequest> out = new ArrayList<>();
        for (Fixtures.GoldenPrompt p : Fixtures.golden(fixture)) {
            out.add(GenerationRequest.ofTokens(prefix + p.index(), p.ids(), greedy(maxTokens)));
        }
        return out;
    }

    static void assertSameTokens(List<GenerationResult> want, List<GenerationResult> got) {
        assertThat(got).hasSameSizeAs(want);
        for (int i = 0; i < want.size(); i++) {
            assertThat(got.get(i).tokenIds()).as("request %d", i).containsExactly(want.get(i).tokenIds());
            assertThat(got.get(i).finishReason()).isEqualTo(want.get(i).finishReason());
        }
    }

    /**
     * Speculative greedy equals plain greedy, several requests per batch, with a small token budget (chunked
     * prefill, drafts cut by the budget); MTP on the MiMo fixtures (tiny-mimo-v2: sliding window 8, so
     * windows are crossed and released while speculating), n-gram on the others.
     */
    @ParameterizedTest
    @ValueSource(strings = {"stories260k-mtp:mtp:3", "tiny-mimo-v2:mtp:2", "tiny-mimo-v2:mtp:4", "stories260k:ngram:3",
            "mixtral-stories260k:ngram:2", "stories260k-mtp:ngram:4"})
    void speculativeGreedyEqualsPlainGreedy(String what) {
        String[] f = what.split(":");
        SpeculativeConfig sc = new SpeculativeConfig(SpeculativeConfig.Method.parse(f[1]), Integer.parseInt(f[2]),
                false, 1, 3);
        List<GenerationRequest> reqs = goldenRequests(f[0], 40, "g");
        for (int budget : new int[] {256, 12}) {
            List<GenerationResult> plain;
            try (LlmEngine e = LlmEngine.open(options(f[0]).maxNumBatchedTokens(budget).maxNumSeqs(4).build())) {
                plain = runAll(e, reqs);
            }
            try (LlmEngine e = LlmEngine.open(options(f[0]).maxNumBatchedTokens(budget).maxNumSeqs(4)
                    .speculative(sc).build())) {
                List<GenerationResult> spec = runAll(e, reqs);
                assertSameTokens(plain, spec);
                long drafted = 0;
                for (GenerationResult r : spec) {
                    assertThat(r.usage().acceptedTokens()).isBetween(0, r.usage().draftTokens());
                    assertThat(r.usage().completionTokens()).isEqualTo(r.tokenIds().length);
                    drafted += r.usage().draftTokens();
                }
                assertThat(drafted).as("drafts proposed").isPositive();
                long all = drafted;
                LlmEngineTest.awaitMetrics(e, m -> m.speculative().draftTokens() == all);
                LlmEngineTest.awaitIdle(e);
            }
        }
    }

    /**
     * A tiny KV budget forces preemptions of speculating requests (drafts cleared, MTP rows rebuilt from the
     * recomputation); every output still equals plain greedy decoding's, and every block comes back.
     */
    @ParameterizedTest
    @ValueSource(strings = {"mtp", "ngram"})
    void preemptionMidSpeculationKeepsTheOutput(String method) {
        List<GenerationRequest> reqs = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            reqs.add(GenerationRequest.ofTokens("p" + i, new int[] {1, 100 + i, 200 + i}, greedy(80 + 10 * i)));
        }
        List<GenerationResult> plain;
        try (LlmEngine e = LlmEngine.open(options(MTP_FIXTURE).maxModelLen(256).build())) {
            plain = runAll(e, reqs);
        }
        // 4 KV heads x (8 + 8) x 4 bytes x 16 tokens per layer and block: the 5 main layers' full group gets 24
        // blocks (384 tokens for 4 sequences of up to ~180), the 2 MTP layers' sliding group (window 512) what 4
        // sequences of 256 tokens hold
        long layerBlock = 4L * 16 * 4 * 16;
        try (LlmEngine e = LlmEngine.open(options(MTP_FIXTURE).maxModelLen(256).maxNumSeqs(4)
                .kvCacheBytes(24 * 5 * layerBlock + 64 * 2 * layerBlock)
                .speculative(new SpeculativeConfig(SpeculativeConfig.Method.parse(method), 3, false, 1, 3)).build())) {
            List<GenerationResult> spec = runAll(e, reqs);
            assertSameTokens(plain, spec);
            assertThat(e.metrics().preemptions()).isPositive();
            assertThat(spec.stream().mapToInt(r -> r.usage().preemptions()).sum()).isPositive();
            assertThat(spec.stream().mapToInt(r -> r.usage().draftTokens()).sum()).isPositive();
            LlmEngineTest.awaitIdle(e);
            assertThat(e.metrics().kvBlocksUsed()).isZero();
        }
    }

    @Test
    void cancelMidSpeculationFreesEveryBlock() throws Exception {
        try (LlmEngine e = LlmEngine.open(options(MTP_FIXTURE).speculative(SpeculativeConfig.mtp(3)).build())) {
            java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(20);
            GenerationHandle h = e.submit(GenerationRequest.ofTokens("c", new int[] {1, 400}, greedy(400)),
                    (id, d) -> started.countDown());
            GenerationHandle other = e.submit(GenerationRequest.ofTokens("o", new int[] {1, 300}, greedy(300)));
            assertThat(started.await(60, TimeUnit.SECONDS)).isTrue();
            h.cancel();
            GenerationResult r = h.result().get(60, TimeUnit.SECONDS);
            assertThat(r.finishReason()).isEqualTo(FinishReason.CANCELLED);
            assertThat(r.usage().draftTokens()).isPositive();
            other.cancel();
            LlmEngineTest.awaitIdle(e);
            assertThat(e.metrics().kvBlocksUsed()).isZero();
        }
    }

    /**
     * Stop rules cut the accepted tokens where plain decoding stops: a stop token id, a stop string and
     * max_tokens give the same tokens and text with and without speculation (n-gram drafts on a repetitive
     * story accept several tokens per step, so a stop often falls inside an accepted run).
     */
    @Test
    void stopRulesCutTheAcceptedTokens() {
        List<GenerationRequest> reqs = new ArrayList<>();
        String[] prompts = {"Once upon a time", "Tom had a red ball", "Lily and Ben"};
        for (int i = 0; i < prompts.length; i++) {
            reqs.add(GenerationRequest.ofText("len" + i, prompts[i], SamplingParams.builder().maxTokens(7 + i).build()));
            reqs.add(GenerationRequest.ofText("str" + i, prompts[i], SamplingParams.builder().maxTokens(120)
                    .stop(List.of("the park", ". ")).build()));
            reqs.add(GenerationRequest.ofText("tok" + i, prompts[i], SamplingParams.builder().maxTokens(120)
                    .stopTokenIds(java.util.Set.of(13, 263)).minTokens(5).build()));
        }
        for (String fixture : new String[] {MTP_FIXTURE}) {
            List<GenerationResult> plain;
            try (LlmEngine e = LlmEngine.open(options(fixture).build())) {
                plain = runAll(e, reqs);
            }
            for (SpeculativeConfig sc : new SpeculativeConfig[] {SpeculativeConfig.mtp(3).withAdaptive(false),
                    SpeculativeConfig.ngram(4).withAdaptive(false)}) {
                try (LlmEngine e = LlmEngine.open(options(fixture).speculative(sc).build())) {
                    List<GenerationResult> spec = runAll(e, reqs);
                    assertSameTokens(plain, spec);
                    for (int i = 0; i < plain.size(); i++) {
                        assertThat(spec.get(i).text()).isEqualTo(plain.get(i).text());
                    }
                }
            }
        }
    }

    /**
     * Seeded sampling with speculation: a request gives the same tokens alone, replayed, and in a batch of
     * other (speculating, sampling and greedy) requests.
     */
    @Test
    void seededSpeculativeSamplingIsBatchInvariant() {
        SamplingParams p = SamplingParams.builder().maxTokens(60).temperature(0.8).topP(0.95).seed(7L)
                .ignoreEos(true).build();
        GenerationRequest probe = GenerationRequest.ofText("probe", "Once upon a time", p);
        try (LlmEngine e = LlmEngine.open(options(MTP_FIXTURE).maxNumSeqs(8)
                .speculative(SpeculativeConfig.mtp(3)).build())) {
            GenerationResult alone = await(e.submit(probe));
            GenerationResult again = await(e.submit(probe));
            assertThat(again.tokenIds()).containsExactly(alone.tokenIds());
            List<GenerationRequest> batch = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                batch.add(GenerationRequest.ofText("b" + i, "Tom had a red ball " + i, SamplingParams.builder()
                        .maxTokens(30 + 7 * i).temperature(i % 2 == 0 ? 0 : 1.0).seed((long) i).ignoreEos(true).build()));
            }
            batch.add(2, probe);
            List<GenerationResult> rs = runAll(e, batch);
            assertThat(rs.get(2).tokenIds()).containsExactly(alone.tokenIds());
            assertThat(alone.usage().draftTokens()).isPositive();
        }
    }

    /**
     * Speculative sampling keeps the target distribution: over many seeds the tokens at output positions
     * 1 and 2 (the first ones verified against drafts) follow the same distribution as plain sampling
     * (two-sample chi-square at p = 0.001, temperature 1).
     */
    @Test
    void seededSpeculativeSamplingMatchesPlainSamplingInDistribution() {
        int n = 600;
        List<GenerationRequest> reqs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            reqs.add(GenerationRequest.ofText("s" + i, "Once upon a time, there was a", SamplingParams.builder()
                    .maxTokens(3).temperature(1.0).seed(1000L + i).ignoreEos(true).build()));
        }
        List<GenerationResult> plain;
        List<GenerationResult> spec;
        try (LlmEngine e = LlmEngine.open(options(MTP_FIXTURE).maxNumSeqs(64).build())) {
            plain = runAll(e, reqs);
        }
        try (LlmEngine e = LlmEngine.open(options(MTP_FIXTURE).maxNumSeqs(64)
                .speculative(SpeculativeConfig.mtp(2).withAdaptive(false)).build())) {
            spec = runAll(e, reqs);
            assertThat(e.metrics().speculative().acceptedTokens()).isPositive();
        }
        for (int pos = 1; pos < 3; pos++) {
            Map<Integer, int[]> counts = new java.util.TreeMap<>();
            for (int i = 0; i < n; i++) {
                counts.computeIfAbsent(plain.get(i).tokenIds()[pos], t -> new int[2])[0]++;
                counts.computeIfAbsent(spec.get(i).tokenIds()[pos], t -> new int[2])[1]++;
            }
            // bins with fewer than 10 tokens in all are merged, so each expected count is large enough
            List<int[]> bins = new ArrayList<>();
            int[] rest = new int[2];
            for (int[] c : counts.values()) {
                if (c[0] + c[1] >= 10) {
                    bins.add(c);
                } else {
                    rest[0] += c[0];
                    rest[1] += c[1];
                }
            }
            if (rest[0] + rest[1] > 0) {
                bins.add(rest);
            }
            double chi2 = 0;
            for (int[] c : bins) {
                double e = (c[0] + c[1]) / 2.0; // equal sample sizes
                chi2 += (c[0] - e) * (c[0] - e) / e + (c[1] - e) * (c[1] - e) / e;
            }
            int df = bins.size() - 1;
            assertThat(df).as("position %d has several likely tokens", pos).isGreaterThanOrEqualTo(3);
            // Wilson-Hilferty: the chi-square quantile at p = 0.999 (z = 3.09)
            double q = df * Math.pow(1 - 2.0 / (9 * df) + 3.09 * Math.sqrt(2.0 / (9 * df)), 3);
            System.out.printf("[spec-engine] distribution at position %d: chi2 %.1f, df %d, 0.999 quantile %.1f%n",
                    pos, chi2, df, q);
            assertThat(chi2).as("chi-square at output position %d (df %d)", pos, df).isLessThan(q);
        }
    }

    /**
     * Adaptive k: tiny-mimo-v2's MTP layer has random weights, so its drafts are almost never accepted;
     * with adaptive on each request soon drafts far fewer than k per step (fixed k drafts k every step),
     * and the output stays plain greedy's.
     */
    @Test
    void adaptiveDraftLengthBacksOffWhenDraftsAreRejected() {
        List<GenerationRequest> reqs = goldenRequests("tiny-mimo-v2", 64, "a");
        List<GenerationResult> plain;
        try (LlmEngine e = LlmEngine.open(options("tiny-mimo-v2").build())) {
            plain = runAll(e, reqs);
        }
        long[] drafted = new long[2];
        for (int adaptive = 0; adaptive < 2; adaptive++) {
            try (LlmEngine e = LlmEngine.open(options("tiny-mimo-v2")
                    .speculative(SpeculativeConfig.mtp(4).withAdaptive(adaptive == 1)).build())) {
                List<GenerationResult> spec = runAll(e, reqs);
                assertSameTokens(plain, spec);
                drafted[adaptive] = spec.stream().mapToLong(r -> r.usage().draftTokens()).sum();
            }
        }
        assertThat(drafted[1]).as("drafts with adaptive k (fixed k: %d)", drafted[0]).isLessThan(drafted[0] / 3);
    }

    /**
     * A prefix-cache hit skips the prompt's cached positions, whose hidden states the MTP drafter never
     * saw: it drafts from the rows it has, and the output is still plain greedy's (and the same as the
     * first, uncached run's).
     */
    @Test
    void mtpDraftingAfterAPrefixCacheHitKeepsTheOutput() {
        int[] prompt = Fixtures.golden(MTP_FIXTURE).get(6).ids(); // 104 tokens: 6 full blocks to reuse
        GenerationRequest req = GenerationRequest.ofTokens("x", prompt, greedy(48));
        try (LlmEngine e = LlmEngine.open(options(MTP_FIXTURE).enablePrefixCaching(true)
                .speculative(SpeculativeConfig.mtp(3)).build())) {
            GenerationResult first = await(e.submit(req));
            GenerationResult cached = await(e.submit(req));
            assertThat(cached.usage().cachedPromptTokens()).isPositive();
            assertThat(cached.tokenIds()).containsExactly(first.tokenIds());
            assertThat(cached.usage().acceptedTokens()).isPositive();
        }
    }

    @Test
    void mtpOnAModelWithoutMtpLayersIsRefusedNamingTheOption() {
        assertThatThrownBy(() -> LlmEngine.open(options("stories260k").speculative(SpeculativeConfig.mtp(2)).build()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'speculative-method'")
                .hasMessageContaining("no MTP layers");
    }
}
