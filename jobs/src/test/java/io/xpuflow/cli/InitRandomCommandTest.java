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
    void llamaSmallIsAbout125MillionParameters() {
        Plan plan = RandomCheckpoint.plan(RandomPreset.LLAMA_SMALL.spec(1, DType.BF16));
        assertThat(plan.parameters()).isEqualTo(plan.activeParameters()).isBetween(100_000_000L, 150_000_000L);
    }

    @Test
    void helpListsThePresets() {
        assertThat(run("init-random", "--help")).isZero();
        assertThat(out.toString()).startsWith("Usage: xpuflow init-random ").contains("Presets:")
                .contains("  mimo-v2-small  MiMo-V2-Flash structure, 1.01B parameters (158M active)")
                .contains("  mimo-v2-tiny ").contains("  llama-small ");
        assertThat(out.toString().lines()).allMatch(l -> l.length() <= 80);
    }

    @Test
    void anUnknownPresetIsAUsageErrorListingThePresets() {
        assertThat(run("init-random", "--preset", "gpt-5", "--out", tmp.resolve("x").toString())).isEqualTo(2);
        assertThat(err.toString()).contains("unknown preset 'gpt-5'").contains("mimo-v2-small, mimo-v2-tiny, llama-small");
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
