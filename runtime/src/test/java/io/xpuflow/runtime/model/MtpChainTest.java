package io.xpuflow.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.device.DeviceException;
import io.xpuflow.device.DeviceModel;
import io.xpuflow.device.KvCache;
import io.xpuflow.device.StepBatch;
import io.xpuflow.runtime.testutil.Fixtures;
import io.xpuflow.runtime.testutil.Fixtures.GoldenPrompt;
import java.io.IOException;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Chained MTP drafting at the device level on stories260k-mtp (two MTP layers, exact mode): MTP-only steps
 * with an explicit input hidden, sequence and position; chaining layer 1 on layer 0's output; recomputing
 * a row after a rejected draft; the greedy drafts of spec-decode.json; argument checks.
 */
class MtpChainTest {
    static final String FIXTURE = "stories260k-mtp";
    static final int BLOCK = 16;
    static final int BLOCKS = 20; // 320 positions per sequence: the longest prompt, 64 new tokens and drafts

    static LoadedModel model;
    static DeviceModel dm;
    static int vocab;
    static int hidden;
    static int groups;

    @BeforeAll
    static void load() {
        model = GoldenFixturesTest.load(FIXTURE, 256);
        dm = model.deviceModel();
        vocab = model.config().vocabSize();
        hidden = model.config().hiddenSize();
        groups = model.kvLayout().numGroups();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static KvCache freshKv() {
        long[] blocks = new long[groups];
        Arrays.fill(blocks, 2 * BLOCKS);
        return dm.createKvCache(BLOCK, blocks);
    }

    /** Sequence {@code s}'s block tables: blocks s*BLOCKS .. in every group. */
    static int[][] tables(int s) {
        int[][] t = new int[groups][BLOCKS];
        for (int[] g : t) {
            for (int i = 0; i < BLOCKS; i++) {
                g[i] = s * BLOCKS + i;
            }
        }
        return t;
    }

    static StepBatch batch() {
        return dm.newBatch(new StepBatch.Capacity(256, 2, BLOCKS, 256, 256, false, true, true));
    }

    /** Decoder step over {@code ids} at 0..: the final normed hidden of every row, [T * hidden]. */
    static float[] prefillHidden(KvCache kv, StepBatch b, int[] ids) {
        b.clear();
        b.addSequence(ids, 0, ids.length, 0, tables(0));
        b.requestLogits(ids.length - 1);
        dm.step(kv, b);
        float[] h = new float[ids.length * hidden];
        float[] row = new float[hidden];
        for (int j = 0; j < ids.length; j++) {
            b.copyHidden(j, row);
            System.arraycopy(row, 0, h, j * hidden, hidden);
        }
        return h;
    }

    /** One MTP-only step: layer {@code layer}, rows at positions from.., row i = (hiddenIn row i, next[i]). */
    static float[][] mtpOnly(KvCache kv, StepBatch b, int layer, int from, float[] hiddenIn, int hiddenRow0, int[] next,
                             float[] hiddenOut) {
        b.clear();
        b.mtpLayer(layer);
        int seq = b.addSequenceTables(tables(0));
        for (int i = 0; i < next.length; i++) {
            b.requestMtp(seq, from + i, next[i], hiddenIn, (hiddenRow0 + i) * hidden);
        }
        dm.step(kv, b);
        float[][] logits = new float[next.length][vocab];
        for (int i = 0; i < next.length; i++) {
            b.copyMtpLogits(i, logits[i]);
            if (hiddenOut != null) {
                b.copyMtpHidden(i, hiddenOut, (from + i) * hidden);
            }
        }
        return logits;
    }

    @Test
    void mtpOnlyStepsWithTheDecoderHiddenReproduceTheInStepLogits() {
        GoldenPrompt p = Fixtures.golden(FIXTURE).get(2);
        int[] ids = p.ids();
        int t = ids.length;
        StepBatch b = batch();
        float[][] inStep = new float[t - 1][vocab];
        float[] h;
        try (KvCache kv = freshKv()) {
            b.addSequence(ids, 0, t, 0, tables(0));
            for (int j = 0; j + 1 < t; j++) {
                b.requestMtp(j, ids[j + 1]);
            }
            dm.step(kv, b);
            h = new float[t * hidden];
            float[] row = new float[hidden];
            for (int j = 0; j < t; j++) {
                b.copyHidden(j, row);
                System.arraycopy(row, 0, h, j * hidden, hidden);
            }
            for (int j = 0; j + 1 < t; j++) {
                b.copyMtpLogits(j, inStep[j]);
            }
        }
        GoldenFixturesTest.assertClose("in-step mtp_logits", inStep, p.mtpLogits());
        int[] next = Arrays.copyOfRange(ids, 1, t);
        try (KvCache kv = freshKv()) {
            // all rows in one MTP-only step (the decoder never ran on this cache: the MTP layer has its own KV)
            float[][] alone = mtpOnly(kv, b, 0, 0, h, 0, next, null);
            assertThat(alone).isDeepEqualTo(inStep);
        }
        try (KvCache kv = freshKv()) {
            // in three steps: later rows attend to the K/V earlier steps wrote
            float[][] a = mtpOnly(kv, b, 0, 0, h, 0, Arrays.copyOfRange(next, 0, 7), null);
            float[][] c = mtpOnly(kv, b, 0, 7, h, 7, Arrays.copyOfRange(next, 7, 8), null);
            float[][] d = mtpOnly(kv, b, 0, 8, h, 8, Arrays.copyOfRange(next, 8, t - 1), null);
            for (int j = 0; j < t - 1; j++) {
                float[] got = j < 7 ? a[j] : j == 7 ? c[0] : d[j - 8];
                assertThat(got).as("row %d", j).containsExactly(inStep[j]);
            }
        }
    }

    @Test
    void layerOneChainedOnLayerZerosOutputMatchesTheReference() {
        for (GoldenPrompt p : Fixtures.golden(FIXTURE).subList(0, 4)) {
            int[] ids = p.ids();
            int t = ids.length;
            StepBatch b = batch();
            try (KvCache kv = freshKv()) {
                float[] h = prefillHidden(kv, b, ids);
                float[] g = new float[t * hidden];
                float[][] l0 = mtpOnly(kv, b, 0, 0, h, 0, Arrays.copyOfRange(ids, 1, t), g);
                GoldenFixturesTest.assertClose("p" + p.index() + " mtp_logits", l0, p.mtpLogits());
                float[][] l1 = mtpOnly(kv, b, 1, 0, g, 0, Arrays.copyOfRange(ids, 2, t), null);
                GoldenFixturesTest.assertClose("p" + p.index() + " mtp1_logits", l1, p.mtp1Logits());
            }
        }
    }

    @Test
    void withoutMtpLogitsTheStepStillWritesTheOutputHiddenAndTheKv() {
        GoldenPrompt p = Fixtures.golden(FIXTURE).get(1);
        int[] ids = p.ids();
        int t = ids.length;
        int[] next = Arrays.copyOfRange(ids, 1, t);
        StepBatch b = batch();
        float[] h;
        float[] withLogits = new float[t * hidden];
        float[][] fresh;
        try (KvCache kv = freshKv()) {
            h = prefillHidden(kv, b, ids);
            fresh = mtpOnly(kv, b, 0, 0, h, 0, next, withLogits);
        }
        try (KvCache kv = freshKv()) {
            b.clear();
            int seq = b.addSequenceTables(tables(0));
            b.mtpLogits(false);
            for (int j = 0; j < t - 2; j++) {
                b.requestMtp(seq, j, next[j], h, j * hidden);
            }
            dm.step(kv, b);
            float[] row = new float[hidden];
            for (int j = 0; j < t - 2; j++) {
                b.copyMtpHidden(j, row, 0);
                assertThat(row).as("row %d", j).containsExactly(Arrays.copyOfRange(withLogits, j * hidden, (j + 1) * hidden));
            }
            assertThatThrownBy(() -> b.copyMtpLogits(0, new float[vocab])).hasMessageContaining("mtpLogits(false)");
            // the last row attends to the K/V the step without logits wrote
            float[][] last = mtpOnly(kv, b, 0, t - 2, h, t - 2, new int[] {next[t - 2]}, null);
            assertThat(last[0]).containsExactly(fresh[t - 2]);
        }
    }

    @Test
    void aRowRecomputedAfterARejectedDraftGivesTheLogitsOfAFreshRun() {
        GoldenPrompt p = Fixtures.golden(FIXTURE).get(3);
        int[] ids = p.ids();
        int t = ids.length;
        int k = 20; // rows 0..k-1 verified; row k first runs with a wrong ("rejected draft") next token
        StepBatch b = batch();
        float[] h;
        float[][] fresh;
        try (KvCache kv = freshKv()) {
            h = prefillHidden(kv, b, ids);
        }
        try (KvCache kv = freshKv()) {
            fresh = mtpOnly(kv, b, 0, 0, h, 0, Arrays.copyOfRange(ids, 1, t), null);
        }
        try (KvCache kv = freshKv()) {
            mtpOnly(kv, b, 0, 0, h, 0, Arrays.copyOfRange(ids, 1, k + 1), null);
            int wrong = (ids[k + 1] + 1) % vocab;
            float[][] rejected = mtpOnly(kv, b, 0, k, h, k, new int[] {wrong, ids[k + 2]}, null);
            assertThat(rejected[0]).isNotEqualTo(fresh[k]);
            // the same position again with the accepted token, then the rows after it attend to the new K/V
            float[][] again = mtpOnly(kv, b, 0, k, h, k, Arrays.copyOfRange(ids, k + 1, t), null);
            for (int j = k; j < t - 1; j++) {
                assertThat(again[j - k]).as("row %d", j).containsExactly(fresh[j]);
            }
        }
    }

    @Test
    void chainedDraftsOfTheFirstVerificationStepMatchSpecDecodeJson() throws IOException {
        JsonNode spec = new ObjectMapper().readTree(Fixtures.model(FIXTURE).resolve("spec-decode.json").toFile());
        int checked = 0;
        for (JsonNode prompt : spec.get("prompts")) {
            int[] ids = ints(prompt.get("ids"));
            int m = ids.length;
            int[] drafts = ints(prompt.get("k3").get("drafts").get(0));
            float[] margins = floats(prompt.get("k3").get("draft_margins").get(0));
            StepBatch b = batch();
            try (KvCache kv = freshKv()) {
                float[] h = prefillHidden(kv, b, ids);
                int xm = b.argmax(0);
                assertThat(xm).as("first new token").isEqualTo(prompt.get("greedy").get(0).asInt());
                int[] x = Arrays.copyOf(ids, m + 2);
                x[m] = xm;
                // draft 1: layer 0 over rows 0..m-1, row j = (h_j, x_{j+1})
                float[] g = new float[(m + 1) * hidden];
                float[][] l0 = mtpOnly(kv, b, 0, 0, h, 0, Arrays.copyOfRange(x, 1, m + 1), g);
                int d1 = GoldenFixturesTest.argmax(l0[m - 1]);
                x[m + 1] = d1;
                // draft 2: layer 1 over rows 0..m-1, row j = (layer 0 output j, x_{j+2}), x_{m+1} = d1
                float[] f = new float[(m + 1) * hidden];
                float[][] l1 = mtpOnly(kv, b, 1, 0, g, 0, Arrays.copyOfRange(x, 2, m + 2), f);
                int d2 = GoldenFixturesTest.argmax(l1[m - 1]);
                // draft 3: layer 1 again, one row at position m = (its own output at m-1, d2)
                float[][] l2 = mtpOnly(kv, b, 1, m, f, m - 1, new int[] {d2}, null);
                int d3 = GoldenFixturesTest.argmax(l2[0]);
                int[] got = {d1, d2, d3};
                for (int i = 0; i < 3; i++) {
                    if (got[i] != drafts[i]) {
                        assertThat(margins[i]).as("prompt of %d tokens: draft %d is %d, spec-decode.json has %d at a margin of %f",
                                m, i + 1, got[i], drafts[i], margins[i]).isLessThan(GoldenFixturesTest.FLIP_MARGIN);
                        break; // later drafts follow from the flipped one
                    }
                    checked++;
                }
            }
        }
        assertThat(checked).isGreaterThanOrEqualTo(20);
    }

    /**
     * Greedy speculative decoding as spec-decode.json describes it, on device calls only: each MTP row is
     * computed once its inputs are verified, and rows that took a draft token are recomputed (their K/V
     * overwritten) at the next step; rejected drafts' main-model K/V are overwritten by the next
     * verification step. Accepted counts, drafts and tokens must equal the reference's.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3})
    void greedySpeculativeDecodingWithChainedDraftsMatchesSpecDecodeJson(int k) throws IOException {
        JsonNode spec = new ObjectMapper().readTree(Fixtures.model(FIXTURE).resolve("spec-decode.json").toFile());
        int nNew = spec.get("n_new").asInt();
        StepBatch b = batch();
        int compared = 0;
        for (JsonNode prompt : spec.get("prompts")) {
            JsonNode want = prompt.get("k" + k);
            int[] ids = ints(prompt.get("ids"));
            int p0 = ids.length;
            int cap = p0 + nNew + k + 2;
            int[] x = Arrays.copyOf(ids, cap);
            float[] h = new float[cap * hidden];  // main model's normed hidden by position
            float[] g = new float[cap * hidden];  // layer 0's output by row
            float[] f = new float[cap * hidden];  // layer 1's output by row
            try (KvCache kv = freshKv()) {
                System.arraycopy(prefillHidden(kv, b, ids), 0, h, 0, p0 * hidden);
                x[p0] = b.argmax(0);
                int m = p0;
                int done0 = 0; // layer 0 rows below this have verified inputs and are final
                int done1 = 0; // the same for layer 1
                for (int step = 0; m - p0 + 1 < nNew; step++) { // x_{p0} .. x_m are the new tokens so far
                    int[] d = new int[k];
                    // layer 0: rows done0..m-1, row j = (h_j, x_{j+1})
                    float[][] l0 = mtpOnly(kv, b, 0, done0, h, done0, Arrays.copyOfRange(x, done0 + 1, m + 1), g);
                    done0 = m;
                    d[0] = GoldenFixturesTest.argmax(l0[l0.length - 1]);
                    if (k >= 2) {
                        // layer 1: rows done1..m-1, row j = (g_j, x_{j+2}) with x_{m+1} = d_1 (so row m-1 is provisional)
                        x[m + 1] = d[0];
                        float[][] l1 = mtpOnly(kv, b, 1, done1, g, done1, Arrays.copyOfRange(x, done1 + 2, m + 2), f);
                        done1 = m - 1;
                        d[1] = GoldenFixturesTest.argmax(l1[l1.length - 1]);
                    }
                    for (int s = 2; s < k; s++) {
                        // recursion on the last layer: one more row at position m + s - 2 = (its own output at the
                        // row before, d_s); provisional like row m-1
                        float[][] ls = mtpOnly(kv, b, 1, m + s - 2, f, m + s - 3, new int[] {d[s - 1]}, f);
                        d[s] = GoldenFixturesTest.argmax(ls[0]);
                    }
                    int[] wantDrafts = ints(want.get("drafts").get(step));
                    float[] margins = floats(want.get("draft_margins").get(step));
                    int flip = firstDifference(d, wantDrafts);
                    if (flip >= 0) {
                        assertThat(margins[flip]).as("prompt of %d tokens, k %d, step %d: drafts %s, spec-decode.json %s",
                                p0, k, step, Arrays.toString(d), Arrays.toString(wantDrafts))
                                .isLessThan(GoldenFixturesTest.FLIP_MARGIN);
                        break; // a legitimate flip: the runs part here
                    }
                    // verification: the main model scores x_m, d_1..d_k at m..m+k (over any rejected drafts' K/V)
                    System.arraycopy(d, 0, x, m + 1, k);
                    b.clear();
                    b.addSequence(x, m, k + 1, m, tables(0));
                    for (int i = 0; i <= k; i++) {
                        b.requestLogits(i);
                    }
                    dm.step(kv, b);
                    int a = 0;
                    while (a < k && b.argmax(a) == d[a]) {
                        a++;
                    }
                    float[] row = new float[hidden];
                    for (int i = 0; i <= a; i++) {
                        b.copyHidden(i, row);
                        System.arraycopy(row, 0, h, (m + i) * hidden, hidden);
                    }
                    x[m + a + 1] = b.argmax(a);
                    assertThat(a).as("prompt of %d tokens, k %d: drafts accepted at step %d", p0, k, step)
                            .isEqualTo(want.get("accepted").get(step).asInt());
                    m += a + 1;
                    compared++;
                    if (m - p0 + 1 >= nNew) {
                        assertThat(step + 1).as("steps").isEqualTo(want.get("accepted").size());
                        assertThat(Arrays.copyOfRange(x, p0, p0 + nNew)).isEqualTo(Arrays.copyOf(ints(prompt.get("greedy")), nNew));
                    }
                }
            }
        }
        int total = 0;
        for (JsonNode prompt : spec.get("prompts")) {
            total += prompt.get("k" + k).get("accepted").size();
        }
        System.out.printf("[spec-decode] k=%d: %d of %d verification steps compared (the rest follow a near-tie draft flip)%n",
                k, compared, total);
        assertThat(compared).isGreaterThan(total / 2);
    }

    static int firstDifference(int[] a, int[] b) {
        for (int i = 0; i < a.length; i++) {
            if (a[i] != b[i]) {
                return i;
            }
        }
        return -1;
    }

    @Test
    void badMtpArgumentsAreNamed() {
        StepBatch b = batch();
        float[] h = new float[2 * hidden];
        try (KvCache kv = freshKv()) {
            b.mtpLayer(0);
            int seq = b.addSequenceTables(tables(0));
            assertThatThrownBy(() -> b.requestMtp(seq + 1, 0, 5, h, 0)).isInstanceOf(IndexOutOfBoundsException.class)
                    .hasMessageContaining("MTP sequence 1");
            assertThatThrownBy(() -> b.requestMtp(seq, -1, 5, h, 0)).hasMessageContaining("MTP position -1");
            assertThatThrownBy(() -> b.requestMtp(seq, 0, vocab, h, 0)).hasMessageContaining("MTP next token " + vocab);
            assertThatThrownBy(() -> b.requestMtp(seq, 0, 5, h, hidden + 1)).hasMessageContaining("MTP hidden input");
            assertThatThrownBy(() -> b.addSequence(new int[] {1}, 0, 1, 0, tables(1)))
                    .hasMessageContaining("MTP-only step");
            // positions must ascend within a sequence: the device names the rule and the field
            b.requestMtp(seq, 3, 5, h, 0);
            b.requestMtp(seq, 3, 6, h, hidden);
            assertThatThrownBy(() -> dm.step(kv, b)).isInstanceOf(DeviceException.class)
                    .hasMessageContainingAll("MTP row 1", "position 3", "strictly ascending");
            // a position beyond the sequence's blocks
            b.clear();
            b.addSequenceTables(tables(0));
            b.requestMtp(0, BLOCK * BLOCKS, 5, h, 0);
            assertThatThrownBy(() -> dm.step(kv, b)).isInstanceOf(DeviceException.class)
                    .hasMessageContainingAll("MTP row 0", "position " + BLOCK * BLOCKS, "blocks");
            // a missing block in the MTP layer's group
            b.clear();
            int[][] holes = tables(0);
            Arrays.fill(holes[model.kvLayout().layerGroup()[model.config().numLayers()]], -1);
            b.addSequenceTables(holes);
            b.requestMtp(0, 0, 5, h, 0);
            assertThatThrownBy(() -> dm.step(kv, b)).isInstanceOf(DeviceException.class)
                    .hasMessageContainingAll("MTP row 0", "block slot 0", "holds block -1");
            // an MTP layer the model lacks
            b.clear();
            b.addSequenceTables(tables(0));
            b.mtpLayer(2);
            b.requestMtp(0, 0, 5, h, 0);
            assertThatThrownBy(() -> dm.step(kv, b)).isInstanceOf(DeviceException.class)
                    .hasMessageContainingAll("MTP layer 2", "has 2");
            // explicit and decoder-row MTP requests do not mix; a step without tokens needs explicit rows
            b.clear();
            b.addSequence(new int[] {1, 2}, 0, 2, 0, tables(0));
            b.requestMtp(0, 2);
            assertThatThrownBy(() -> b.requestMtp(0, 1, 5, h, 0)).hasMessageContaining("all are explicit");
            b.clear();
            assertThatThrownBy(() -> dm.step(kv, b)).hasMessageContaining("empty batch");
        }
        StepBatch noHidden = dm.newBatch(new StepBatch.Capacity(8, 1, BLOCKS, 8, 8, false, false));
        noHidden.addSequenceTables(tables(0));
        assertThatThrownBy(() -> noHidden.requestMtp(0, 0, 5, h, 0)).hasMessageContaining("Capacity.mtpHidden");
    }

    static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asInt();
        }
        return out;
    }

    static float[] floats(JsonNode a) {
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) a.get(i).asDouble();
        }
        return out;
    }
}
