package io.xpuflow.runtime.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Arch;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Plan;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Spec;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The generator itself: its plan against the file it writes, parameter counts, the fast draws. */
class RandomCheckpointTest {
    @TempDir
    Path tmp;

    /** hidden 16, vocab 32, 2 layers: dense then 4 experts (top 2) of 8 units, with a 2-head attention of 8. */
    private static Spec small(String name) {
        return Spec.of(name, Arch.MIMO).vocab(32).hidden(16).layers(2).swaPattern(0, 1).moePattern(0, 1)
                .attention(2, 1, 8, 8).swaAttention(2, 1, 8, 8).window(4).intermediate(24).experts(4, 2, 8);
    }

    @Test
    void thePlanDescribesTheWrittenFile() {
        for (boolean fast : new boolean[] {false, true}) {
            Spec spec = small("plan-" + fast).fast(fast);
            Plan plan = RandomCheckpoint.plan(spec);
            RandomCheckpoint.Written w = RandomCheckpoint.writeInto(tmp.resolve(spec.name), spec);
            assertThat(w.files()).containsExactly(w.dir().resolve("model.safetensors"), w.dir().resolve("config.json"));
            assertThat(w.dir().resolve("model.safetensors")).hasSize(plan.fileSize());
            assertThat(w.dir().resolve("model.safetensors.partial")).doesNotExist();
            try (SafetensorsFile f = SafetensorsFile.open(w.dir().resolve("model.safetensors"))) {
                assertThat(f.tensors().keySet()).containsExactlyElementsOf(plan.tensors().stream().map(Tensor::name).toList());
                for (Tensor t : plan.tensors()) {
                    TensorInfo info = f.require(t.name());
                    assertThat(info.dtype()).as(t.name()).isEqualTo(t.dtype());
                    assertThat(info.numel()).as(t.name()).isEqualTo(t.numel());
                }
            }
        }
    }

    @Test
    void countsParametersAndTheActiveOnes() {
        Plan plan = RandomCheckpoint.plan(small("count"));
        long embedAndHead = 2 * 32 * 16;
        long norms = 16 * (2 * 2 + 1);
        long attention = 2 * (16 * 16 + 8 * 16 + 8 * 16 + 16 * 16) + 2; // q, k, v, o per layer; sinks of layer 1
        long dense = 3 * 16 * 24;
        long router = 4 * 16 + 4;                                         // gate and correction bias
        long expert = 3 * 16 * 8;
        assertThat(plan.parameters()).isEqualTo(embedAndHead + norms + attention + dense + router + 4 * expert);
        assertThat(plan.routedExpertParameters()).isEqualTo(4 * expert);
        assertThat(plan.activeParameters()).isEqualTo(embedAndHead + norms + attention + dense + router + 2 * expert);
        assertThat(plan.tensors().stream().filter(Tensor::routedExpert).map(Tensor::name))
                .hasSize(12).allMatch(n -> n.contains(".experts."));
    }

    @Test
    void fastDrawsAreReproducibleAndRoughlyNormal() throws IOException {
        Spec a = small("a").fast(true).seed(5).hidden(256);
        Path first = RandomCheckpoint.write(tmp, a);
        Path again = RandomCheckpoint.write(tmp.resolve("again"), small("a").fast(true).seed(5).hidden(256));
        Path other = RandomCheckpoint.write(tmp, small("b").fast(true).seed(6).hidden(256));
        byte[] bytes = Files.readAllBytes(first.resolve("model.safetensors"));
        assertThat(Files.readAllBytes(again.resolve("model.safetensors"))).isEqualTo(bytes);
        assertThat(Files.readAllBytes(other.resolve("model.safetensors"))).isNotEqualTo(bytes);
        try (SafetensorsFile f = SafetensorsFile.open(first.resolve("model.safetensors"))) {
            float[] w = f.readFloats("model.embed_tokens.weight"); // std 1
            double sum = 0;
            double sq = 0;
            double max = 0;
            for (float x : w) {
                sum += x;
                sq += x * x;
                max = Math.max(max, Math.abs(x));
            }
            double mean = sum / w.length;
            double std = Math.sqrt(sq / w.length - mean * mean);
            assertThat(mean).isBetween(-0.05, 0.05);
            assertThat(std).isBetween(0.95, 1.05);
            assertThat(max).isGreaterThan(2.5).isLessThan(3.5);
            float[] bias = f.readFloats("model.layers.1.mlp.gate.e_score_correction_bias");
            for (float b : bias) {
                assertThat(b).isBetween(-0.3f, 0.3f);
            }
        }
    }

    @Test
    void presetsAreFoundByTheirIds() {
        assertThat(RandomPreset.byId("mimo-v2-tiny")).contains(RandomPreset.MIMO_V2_TINY);
        assertThat(RandomPreset.byId("nope")).isEmpty();
        assertThat(RandomPreset.ids()).isEqualTo("mimo-v2-small, mimo-v2-tiny, mimo-v2-bench, llama-small");
        Spec s = RandomPreset.LLAMA_SMALL.spec(3, DType.F32);
        assertThat(s.name).isEqualTo("llama-small");
        assertThat(s.seed).isEqualTo(3);
        assertThat(s.dtype).isEqualTo(DType.F32);
        assertThat(s.fast).isTrue();
        assertThat(RandomCheckpoint.plan(s).parameters()).isBetween(100_000_000L, 150_000_000L);
    }
}
