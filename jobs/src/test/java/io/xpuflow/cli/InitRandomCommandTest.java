package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.checkpoint.DType;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Plan;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Spec;
import io.xpuflow.runtime.checkpoint.RandomPreset;
import io.xpuflow.runtime.config.AttentionConfig;
import io.xpuflow.runtime.config.FfnConfig;
import io.xpuflow.runtime.config.ModelConfig;
import io.xpuflow.runtime.config.ModelConfigs;
import io.xpuflow.runtime.model.LoadOptions;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.model.ModelRunner;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code xpuflow init-random}: presets that load and run, their parameter counts, and the refusals. */
class InitRandomCommandTest {
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    @TempDir
    Path tmp;

    private int run(String... args) {
        return XpuFlowCli.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
    }

    @Test
    void mimoV2TinyLoadsAndGivesFiniteLogits() {
        Path dir = tmp.resolve("tiny");
        assertThat(run("init-random", "--preset", "mimo-v2-tiny", "--out", dir.toString(), "--seed", "7")).as(err.toString()).isZero();
        List<String> lines = out.toString().lines().toList();
        assertThat(lines).hasSize(4);
        assertThat(lines.get(0)).isEqualTo("wrote " + dir.resolve("model.safetensors") + " (3.6 MB)");
        assertThat(lines.get(1)).startsWith("wrote " + dir.resolve("config.json") + " (");
        assertThat(lines.get(2)).matches("296 tensors, 1,769,376 parameters, 1,523,616 active per token, BF16 in [0-9.]+ s");
        assertThat(lines.get(3)).isEqualTo("Wrote mimo-v2-tiny to " + dir + ": 1.77M parameters (1.52M active), 3.6 MB");

        int[] prompt = IntStream.range(0, 40).map(i -> (i * 977 + 5) % 8192).toArray(); // longer than the window of 16
        try (LoadedModel m = LoadedModel.load(dir, new LoadOptions(2, 16, 1));
             ModelRunner runner = new ModelRunner(m, prompt.length, 1)) {
            ModelConfig c = m.config();
            assertThat(c.architecture()).isEqualTo("MiMoV2FlashForCausalLM");
            assertThat(c.vocabSize()).isEqualTo(8192);
            assertThat(c.layers().stream().map(l -> l.attention().sliding()).toList())
                    .containsExactly(false, true, true, true, true, false);
            AttentionConfig swa = c.layers().get(1).attention();
            assertThat(swa.window()).isEqualTo(16);
            assertThat(swa.sink()).isTrue();
            assertThat(swa.headDimQk()).isEqualTo(48);
            assertThat(swa.headDimV()).isEqualTo(32);
            assertThat(swa.rotaryDim()).isEqualTo(16);
            assertThat(c.layers().get(0).ffn()).isInstanceOf(FfnConfig.Dense.class);
            FfnConfig.Moe moe = (FfnConfig.Moe) c.layers().get(1).ffn();
            assertThat(moe.numExperts()).isEqualTo(16);
            assertThat(moe.topK()).isEqualTo(8);
            assertThat(moe.correctionBias()).isTrue();
            assertThat(moe.scoring()).hasToString("SIGMOID");

            ModelRunner.Scores s = runner.score(prompt, false, true);
            assertThat(s.logits()).hasNumberOfRows(prompt.length);
            for (float[] row : s.logits()) {
                assertThat(row).hasSize(8192);
                for (float x : row) {
                    assertThat(Float.isFinite(x)).isTrue();
                }
            }
            assertThat(s.experts()[0][0]).hasSize(8);
        }
    }

    @Test
    void mimoV2SmallHitsOneBillionParametersAndAbout150MillionActive() {
        Spec spec = RandomPreset.MIMO_V2_SMALL.spec(1, DType.BF16);
        Plan plan = RandomCheckpoint.plan(spec); // counts only: nothing is drawn or written
        // the same count from the shapes, independently of the generator's tensor list
        long h = 768;
        long vocab = 32000;
        long qk = 96;
        long v = 64;
        long heads = 12;
        long expert = 3 * h * 384;
        long total = 2 * vocab * h + h;                                  // embedding, LM head, final norm
        long active = total;
        for (int l = 0; l < 12; l++) {
            boolean full = l == 0 || (l + 1) % 6 == 0;
            long kv = full ? 2 : 4;
            long layer = 2 * h + heads * qk * h + kv * qk * h + kv * v * h + h * heads * v + (full ? 0 : heads);
            if (l == 0) {
                layer += 3 * h * 3072;                                    // dense SwiGLU of 8 x 384 units
                total += layer;
                active += layer;
            } else {
                layer += 96 * h + 96;                                     // router and correction bias
                total += layer + 96 * expert;
                active += layer + 8 * expert;
            }
        }
        assertThat(plan.parameters()).isEqualTo(total).isEqualTo(1_014_198_156L).isBetween(900_000_000L, 1_100_000_000L);
        assertThat(plan.activeParameters()).isEqualTo(active).isEqualTo(157_773_708L).isBetween(135_000_000L, 165_000_000L);
        assertThat(plan.fileSize()).isBetween(2 * total, 2 * total + 4_000_000); // BF16, routers F32, the header
        assertThat(spec.swaPattern).containsExactly(0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0);
        assertThat(spec.window).isEqualTo(128);
        assertThat(spec.swaSink).isTrue();
        assertThat(spec.fullSink).isFalse();
        assertThat(spec.partialRotary).isEqualTo(0.334);
        assertThat(spec.scoring).isEqualTo("sigmoid");
        assertThat(spec.topkMethod).isEqualTo("noaux_tc");
    }

    @Test
    void mimoV2BenchConfigLoadsAndHasAbout680MillionParametersAnd196MillionActive() throws IOException {
        Spec spec = RandomPreset.MIMO_V2_BENCH.spec(1, DType.BF16);
        Plan plan = RandomCheckpoint.plan(spec); // nothing drawn or written: the checkpoint is 1.36 GB
        Files.writeString(tmp.resolve("config.json"), RandomCheckpoint.configJson(spec));
        ModelConfigs.Parsed parsed = ModelConfigs.withMtp(ModelConfigs.read(tmp),
                name -> plan.tensors().stream().anyMatch(t -> t.name().equals(name)));
        ModelConfig c = parsed.config();
        assertThat(c.architecture()).isEqualTo("MiMoV2FlashForCausalLM");
        assertThat(c.vocabSize()).isEqualTo(32000);
        assertThat(c.hiddenSize()).isEqualTo(1024);
        // the shipped 5:1 pattern as the other MiMo presets lay it out: layer 0 and every sixth layer full
        assertThat(c.layers().stream().map(l -> l.attention().sliding()).toList())
                .containsExactly(false, true, true, true, true, false, true, true, true, true, true, false);
        for (ModelConfig.LayerConfig l : c.layers()) {
            AttentionConfig a = l.attention();
            assertThat(a.numHeads()).isEqualTo(16);
            assertThat(a.numKvHeads()).isEqualTo(a.sliding() ? 4 : 2);
            assertThat(a.headDimQk()).isEqualTo(96);
            assertThat(a.headDimV()).isEqualTo(64);
            assertThat(a.rotaryDim()).isEqualTo(32); // 0.334 x 96, rounded down to an even size
            assertThat(a.window()).isEqualTo(a.sliding() ? 128 : 0);
            assertThat(a.sink()).isEqualTo(a.sliding());
        }
        assertThat(c.layers().get(0).ffn()).isEqualTo(new FfnConfig.Dense(2816));
        for (int l = 1; l < 12; l++) {
            FfnConfig.Moe moe = (FfnConfig.Moe) c.layers().get(l).ffn();
            assertThat(moe.numExperts()).isEqualTo(32);
            assertThat(moe.topK()).isEqualTo(4);
            assertThat(moe.intermediateSize()).isEqualTo(512);
            assertThat(moe.scoring()).isEqualTo(FfnConfig.Scoring.SIGMOID);
            assertThat(moe.correctionBias()).isTrue();
        }
        assertThat(c.mtpLayers()).hasSize(1);
        assertThat(c.mtpLayers().get(0).attention().sliding()).isTrue();
        assertThat(c.mtpLayers().get(0).ffn()).isEqualTo(new FfnConfig.Dense(2816));

        // by hand, h = 1024:
        //   embedding + LM head + final norm   2 x 32000 x 1024 + 1024                    =  65,537,024
        //   attention, full (3 layers)         q 16x96 + k 2x96 + v 2x64 rows, o 1024x1024 =   2,949,120 each
        //   attention, sliding (9 layers)      k, v with 4 KV heads, + 16 sink logits        =   3,276,816 each
        //   norms                              2 x 1024 per layer                            =       2,048 each
        //   layer 0: dense SwiGLU              3 x 1024 x 2816                               =   8,650,752
        //   layers 1-11: router (F32) + bias   32 x 1024 + 32                                =      32,800 each
        //                32 experts            32 x 3 x 1024 x 512                           =  50,331,648 each
        //   MTP layer                          enorm, hnorm, eh_proj 1024x2048, 3 norms,
        //                                      sliding attention, dense SwiGLU 2816          =  14,029,840
        // total 680,589,824; active: 4 of 32 experts, i.e. 11 x 28 x 1,572,864 = 484,442,112 fewer: 196,147,712
        long h = 1024;
        long full = 16 * 96 * h + 2 * 96 * h + 2 * 64 * h + h * 16 * 64;
        long sliding = 16 * 96 * h + 4 * 96 * h + 4 * 64 * h + h * 16 * 64 + 16;
        long dense = 3 * h * 2816;
        long expert = 3 * h * 512;
        long router = 32 * h + 32;
        long mtp = 2 * h + h * 2 * h + 3 * h + sliding + dense;
        long total = 2 * 32000 * h + h + 3 * full + 9 * sliding + 12 * 2 * h + dense + 11 * (router + 32 * expert) + mtp;
        long active = total - 11 * 28 * expert;
        assertThat(full).isEqualTo(2_949_120L);
        assertThat(sliding).isEqualTo(3_276_816L);
        assertThat(mtp).isEqualTo(14_029_840L);
        assertThat(plan.parameters()).isEqualTo(total).isEqualTo(680_589_824L);
        assertThat(plan.activeParameters()).isEqualTo(active).isEqualTo(196_147_712L);
        assertThat(plan.fileSize()).isBetween(2 * total, 2 * total + 4_000_000); // BF16, routers F32, the header
        assertThat(InitRandomCommand.count(plan.parameters())).isEqualTo("681M");
        assertThat(InitRandomCommand.count(plan.activeParameters())).isEqualTo("196M");
        assertThat(InitRandomCommand.bytes(plan.fileSize())).isEqualTo("1.36 GB");
        assertThat(RandomPreset.MIMO_V2_BENCH.description()).contains("681M parameters (196M active), 1.36 GB");
    }

    @Test
    void mtpLayersCanBeAddedToAMimoPresetAndRun() {
        Path dir = tmp.resolve("tiny-mtp");
        assertThat(run("init-random", "--preset", "mimo-v2-tiny", "--out", dir.toString(), "--mtp-layers", "2"))
                .as(err.toString()).isZero();
        try (LoadedModel m = LoadedModel.load(dir, new LoadOptions(1, 16, 1));
             ModelRunner runner = new ModelRunner(m, 8, 1)) {
            assertThat(m.config().mtpLayers()).hasSize(2);
            ModelRunner.Scores s = runner.score(new int[] {1, 2, 3, 4}, true, false);
            assertThat(s.mtpLogits()).hasNumberOfRows(3);
        }
        // and taken away from the preset that has one (nothing is written for the counts)
        Spec bench = RandomPreset.MIMO_V2_BENCH.spec(1, DType.BF16);
        assertThat(bench.mtpLayers).isEqualTo(1);

        err.getBuffer().setLength(0);
        assertThat(run("init-random", "--preset", "llama-small", "--out", tmp.resolve("l").toString(), "--mtp-layers", "1"))
                .isEqualTo(2);
        assertThat(err.toString()).contains("--mtp-layers: preset llama-small is LlamaForCausalLM, which has no MTP layers");
        err.getBuffer().setLength(0);
        assertThat(run("init-random", "--preset", "mimo-v2-tiny", "--out", tmp.resolve("m").toString(), "--mtp-layers", "-1"))
                .isEqualTo(2);
        assertThat(err.toString()).contains("--mtp-layers must be >= 0, was -1");
        assertThat(tmp.resolve("l")).doesNotExist();
    }

    @Test
    void llamaSmallIsAbout125MillionParameters() {
        Plan plan = RandomCheckpoint.plan(RandomPreset.LLAMA_SMALL.spec(1, DType.BF16));
        assertThat(plan.parameters()).isEqualTo(plan.activeParameters()).isBetween(100_000_000L, 150_000_000L);
    }

    @Test
    void helpListsThePresets() {
        assertThat(run("init-random", "--help")).isZero();
        assertThat(out.toString()).startsWith("Usage: xpuflow init-random ").contains("Presets:")
                .contains("  mimo-v2-small  MiMo-V2-Flash structure, 1.01B parameters (158M active)")
                .contains("  mimo-v2-tiny ").contains("  mimo-v2-bench  MiMo-V2 structure for the weight-format")
                .contains("  llama-small ");
        assertThat(out.toString().lines()).allMatch(l -> l.length() <= 80);
    }

    @Test
    void anUnknownPresetIsAUsageErrorListingThePresets() {
        assertThat(run("init-random", "--preset", "gpt-5", "--out", tmp.resolve("x").toString())).isEqualTo(2);
        assertThat(err.toString()).contains("unknown preset 'gpt-5'").contains("mimo-v2-small, mimo-v2-tiny, mimo-v2-bench, llama-small");
        assertThat(tmp.resolve("x")).doesNotExist();

        err.getBuffer().setLength(0);
        assertThat(run("init-random", "--preset", "mimo-v2-tiny", "--out", tmp.resolve("x").toString(), "--dtype", "fp8")).isEqualTo(2);
        assertThat(err.toString()).contains("--dtype must be bf16 or f32");
    }

    @Test
    void aNonEmptyDirectoryIsRefusedUnlessForced() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("busy"));
        Files.writeString(dir.resolve("notes.txt"), "keep me");
        Files.writeString(dir.resolve("model-00001-of-00002.safetensors"), "stale shard");
        assertThat(run("init-random", "--preset", "mimo-v2-tiny", "--out", dir.toString())).isEqualTo(1);
        assertThat(err.toString()).startsWith("xpuflow: " + dir + " is not empty").contains("--force").doesNotContain("\tat ");
        assertThat(err.toString().strip().lines()).hasSize(1);
        assertThat(dir.resolve("model.safetensors")).doesNotExist();

        err.getBuffer().setLength(0);
        assertThat(run("init-random", "--preset", "mimo-v2-tiny", "--out", dir.toString(), "--force", "--dtype", "f32"))
                .as(err.toString()).isZero();
        assertThat(dir.resolve("model-00001-of-00002.safetensors")).doesNotExist();
        assertThat(dir.resolve("notes.txt")).hasContent("keep me");
        assertThat(out.toString()).contains("F32").contains("7.1 MB");
        try (LoadedModel m = LoadedModel.load(dir, new LoadOptions(1, 16, 1))) {
            assertThat(m.config().numMoeLayers()).isEqualTo(5);
        }
    }

    @Test
    void aFileInThePlaceOfTheDirectoryIsRefused() throws IOException {
        Path file = Files.writeString(tmp.resolve("file"), "x");
        assertThat(run("init-random", "--preset", "mimo-v2-tiny", "--out", file.toString())).isEqualTo(1);
        assertThat(err.toString()).contains("is not a directory");
    }

    @Test
    void sizesAndCountsAreFormattedWithThreeSignificantDigits() {
        assertThat(InitRandomCommand.count(1_014_198_156L)).isEqualTo("1.01B");
        assertThat(InitRandomCommand.count(157_773_708L)).isEqualTo("158M");
        assertThat(InitRandomCommand.count(15_773_708L)).isEqualTo("15.8M");
        assertThat(InitRandomCommand.count(1_523_616L)).isEqualTo("1.52M");
        assertThat(InitRandomCommand.count(25_300L)).isEqualTo("25.3K");
        assertThat(InitRandomCommand.count(999L)).isEqualTo("999");
        assertThat(InitRandomCommand.bytes(2_028_400_000L)).isEqualTo("2.03 GB");
        assertThat(InitRandomCommand.bytes(3_600_000L)).isEqualTo("3.6 MB");
        assertThat(InitRandomCommand.bytes(1_300L)).isEqualTo("1.3 kB");
        assertThat(InitRandomCommand.bytes(12L)).isEqualTo("12 B");
    }
}
