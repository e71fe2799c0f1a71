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

    @Test
    void mtpOnAModelWithoutMtpLayersIsRefusedNamingTheOption() {
        assertThatThrownBy(() -> LlmEngine.open(options("stories260k").speculative(SpeculativeConfig.mtp(2)).build()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'speculative-method'")
                .hasMessageContaining("no MTP layers");
    }
}
