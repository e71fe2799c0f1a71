package io.xpuflow.runtime.reference;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.checkpoint.DType;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Arch;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Spec;
import io.xpuflow.runtime.model.LoadOptions;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.model.ModelRunner;
import java.nio.file.Path;
import java.util.Random;
import java.util.stream.LongStream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Complements {@link ReferenceComparisonTest}'s named specs with shapes drawn at random from a seed:
 * layer-type and MoE patterns, head counts and sizes, windows from 1 to 40 (across the 16-token KV
 * blocks), expert groups, scoring, weight dtype and FP8 block shape, and the prefill chunk size.
 * Logits and MTP logits must match the reference within 1e-4 and the routing trace exactly (except
 * near-ties, see {@link ReferenceComparisonTest}).
 */
class RandomShapesTest {
    @TempDir
    Path tmp;

    static LongStream seeds() {
        return LongStream.range(1, 25);
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void randomShapesFollowTheReference(long seed) {
        Random r = new Random(seed);
        Spec spec = randomSpec(seed, r);
        int stepTokens = 1 + r.nextInt(9);
        String what = describe(spec) + ", steps of " + stepTokens;
        Path dir = RandomCheckpoint.write(tmp, spec);
        ReferenceModel ref = ReferenceModel.load(dir);
        int[] prompt = RandomCheckpoint.prompt(spec);
        ReferenceModel.Forward f = ref.forward(prompt);
        ModelRunner.Scores s;
        try (LoadedModel model = LoadedModel.load(dir, new LoadOptions(2, stepTokens, 1, WeightFormat.EXACT, null));
             ModelRunner runner = new ModelRunner(model, prompt.length, 1)) {
            s = runner.score(prompt, ref.hasMtp(), ref.numMoeLayers() > 0);
        }
        double err = ReferenceComparisonTest.maxError(s.logits(), f.logits());
        assertThat(err).as("%s: max |engine - reference| logits = %.3g", what, err)
                .isLessThanOrEqualTo(ReferenceComparisonTest.TOLERANCE);
        if (ref.hasMtp()) {
            double mtpErr = ReferenceComparisonTest.maxError(s.mtpLogits(), ref.mtpLogits(prompt, f.normedHidden()));
            assertThat(mtpErr).as("%s: max |engine - reference| MTP logits = %.3g", what, mtpErr)
                    .isLessThanOrEqualTo(ReferenceComparisonTest.TOLERANCE);
        }
        for (int m = 0; m < f.routes().size(); m++) {
            for (int t = 0; t < prompt.length; t++) {
                ReferenceModel.Route route = f.routes().get(m)[t];
                if (route.margin() >= ReferenceComparisonTest.TIE) {
                    assertThat(s.experts()[m][t]).as("%s: MoE layer %d token %d", what, m, t)
                            .containsExactly(route.experts());
                }
            }
        }
    }

    private static Spec randomSpec(long seed, Random r) {
        Arch[] archs = {Arch.MIMO, Arch.MIMO, Arch.MIMO, Arch.MIXTRAL, Arch.QWEN3, Arch.QWEN3_MOE, Arch.LLAMA};
        Arch arch = archs[r.nextInt(archs.length)];
        boolean mimo = arch == Arch.MIMO;
        int layers = 2 + r.nextInt(3);
        int[] swa = new int[layers];
        int[] moe = new int[layers];
        for (int l = 0; l < layers; l++) {
            swa[l] = r.nextInt(2);
            moe[l] = r.nextInt(2);
        }
        int kv = 1 + r.nextInt(3);
        int headDim = 2 * (3 + r.nextInt(14));
        int groups = 1 + r.nextInt(4);
        int perGroup = 2 + r.nextInt(3);
        int topkGroups = 1 + r.nextInt(groups);
        Spec s = Spec.of("seed" + seed, arch).seed(seed).vocab(64 + r.nextInt(200))
                .hidden(8 * (3 + r.nextInt(8)) + (r.nextBoolean() ? 0 : 4)).layers(layers).prompt(10 + r.nextInt(60))
                .intermediate(16 + r.nextInt(60)).tie(r.nextBoolean())
                .window(r.nextBoolean() || mimo ? 1 + r.nextInt(40) : 0);
        int heads = kv * (1 + r.nextInt(3));
        if (mimo) {
            int swaKv = 1 + r.nextInt(2);
            s.attention(heads, kv, headDim, 2 * (2 + r.nextInt(12)))
                    .swaAttention(swaKv * (1 + r.nextInt(3)), swaKv, 2 * (3 + r.nextInt(10)), 2 * (2 + r.nextInt(10)))
                    .swaPattern(swa).moePattern(moe).sinks(r.nextBoolean(), r.nextBoolean())
                    .valueScale(r.nextBoolean() ? 0.707 : null)
                    .experts(groups * perGroup, 1 + r.nextInt(Math.min(topkGroups * perGroup, 4)), 8 + r.nextInt(24))
                    .groups(groups, topkGroups)
                    .routing(r.nextBoolean() ? "sigmoid" : "softmax", r.nextBoolean() ? "noaux_tc" : "greedy")
                    .normTopk(r.nextBoolean()).routedScaling(r.nextBoolean() ? 1.5 : null).shared(r.nextInt(2))
                    .mtp(r.nextInt(2));
        } else {
            s.attention(heads, kv, headDim, headDim).experts(2 + r.nextInt(8), 1 + r.nextInt(2), 8 + r.nextInt(24))
                    .normTopk(r.nextBoolean()).mlpOnly(r.nextInt(layers));
        }
        DType[] dtypes = {DType.F32, DType.BF16, DType.F16, DType.F8_E4M3};
        DType dtype = dtypes[r.nextInt(mimo ? 4 : 3)];
        if (dtype == DType.F8_E4M3) {
            s.fp8(4 * (1 + r.nextInt(8)), 4 * (1 + r.nextInt(8)));
        } else {
            s.dtype(dtype);
        }
        return s;
    }

    private static String describe(Spec s) {
        return s.name + " " + s.arch + " hidden " + s.hidden + ", heads " + s.heads + "/" + s.kvHeads + "x" + s.headDim
                + (s.arch == Arch.MIMO ? ", swa " + s.swaHeads + "/" + s.swaKvHeads + "x" + s.swaHeadDim : "")
                + ", window " + s.window + ", experts " + s.experts + " top-" + s.topK + " groups " + s.nGroup + "/"
                + s.topkGroup + " " + s.scoring + " " + s.topkMethod + ", " + s.dtype
                + (s.fp8Block != null ? " " + s.fp8Block[0] + "x" + s.fp8Block[1] : "") + ", prompt " + s.promptLength;
    }
}
