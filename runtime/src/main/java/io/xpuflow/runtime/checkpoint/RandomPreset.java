package io.xpuflow.runtime.checkpoint;

import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Arch;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Spec;
import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * Named random checkpoints for benchmarks and tests ({@code xpuflow init-random --preset NAME}). Every preset
 * draws with {@link Spec#fast} and stores BF16 weights unless another dtype is asked for.
 *
 * <p>The MiMo presets follow MiMo-V2-Flash's structure scaled down: layer 0 and every sixth layer
 * ({@code l + 1} divisible by 6) full attention, the others sliding-window attention with an attention
 * sink bias, as in the shipped {@code hybrid_layer_pattern}; query/key heads 1.5 times the value heads
 * (192/128 there); partial RoPE ({@code partial_rotary_factor} 0.334) with thetas 5e6 (full) and 1e4
 * (sliding); V scaled by 0.707; layer 0 a dense SwiGLU (eight experts' width unless stated), every other layer
 * sigmoid-routed experts with a correction bias ({@code noaux_tc}), top-8 unless stated, no shared expert; MTP
 * layers (sliding attention, the dense SwiGLU) only where stated.
 */
public enum RandomPreset {
    /**
     * MiMo-V2-Flash structure at 1,014,198,156 parameters, 157,773,708 active per token (2.03 GB in BF16):
     * vocabulary 32000, hidden 768, 12 layers (3 full, 9 sliding with window 128), 12 query heads of 96 with
     * 2 (full) / 4 (sliding) KV heads and value heads of 64, 96 routed experts of 384 units with 8 per token.
     */
    MIMO_V2_SMALL("mimo-v2-small",
            "MiMo-V2-Flash structure, 1.01B parameters (158M active), 2.03 GB: hidden 768, 12 layers "
                    + "(sliding window 128 + sink : full = 5:1), 12 heads q/k 96 v 64, 96 experts top-8") {
        @Override
        Spec base() {
            return mimo(id(), 32000, 768, 12, 12, 2, 4, 96, 64, 128, 8 * 384, 96, 8, 384);
        }
    },
    /** The same structure at 1.77M parameters (3.6 MB), for tests: vocabulary 8192, hidden 64, 6 layers, 16 experts top-8, window 16. */
    MIMO_V2_TINY("mimo-v2-tiny",
            "The same structure at 1.77M parameters (3.6 MB), for tests: vocabulary 8192, hidden 64, 6 layers, "
                    + "window 16, 16 experts top-8") {
        @Override
        Spec base() {
            return mimo(id(), 8192, 64, 6, 4, 1, 2, 48, 32, 16, 8 * 32, 16, 8, 32);
        }
    },
    /**
     * The shape the fast weight formats are benchmarked on, 680,589,824 parameters, 196,147,712 active per token
     * (1.36 GB in BF16): vocabulary 32000, hidden 1024, 12 layers (3 full with 2 KV heads, 9 sliding with window
     * 128, a sink and 4 KV heads), 16 query heads of 96 with value heads of 64, layer 0 a dense SwiGLU of 2816,
     * then 32 routed experts of 512 units with 4 per token, and one MTP layer (sliding attention, dense SwiGLU of
     * 2816), which counts as active.
     */
    MIMO_V2_BENCH("mimo-v2-bench",
            "MiMo-V2 structure for the weight-format benchmarks, 681M parameters (196M active), 1.36 GB: hidden 1024,"
                    + " 12 layers (sliding window 128 + sink : full = 5:1), 16 heads q/k 96 v 64, layer 0 dense 2816,"
                    + " 32 experts of 512 top-4, 1 MTP layer") {
        @Override
        Spec base() {
            return mimo(id(), 32000, 1024, 12, 16, 2, 4, 96, 64, 128, 2816, 32, 4, 512).mtp(1);
        }
    },
    /** A dense Llama of 124.7M parameters: vocabulary 32000, hidden 768, 12 layers, 12 heads of 64, 4 KV heads. */
    LLAMA_SMALL("llama-small",
            "Llama dense (LlamaForCausalLM), 125M parameters, 249 MB: hidden 768, 12 layers, 12 heads of 64 "
                    + "(4 KV), intermediate 2048") {
        @Override
        Spec base() {
            return Spec.of(id(), Arch.LLAMA).vocab(32000).hidden(768).layers(12).attention(12, 4, 64, 64)
                    .intermediate(2048).theta(500000, 500000);
        }
    };

    private final String id;
    private final String description;

    RandomPreset(String id, String description) {
        this.id = id;
        this.description = description;
    }

    /** The spec before the seed and dtype are applied. */
    abstract Spec base();

    /** The preset's name on the command line, e.g. {@code mimo-v2-small}. */
    public String id() {
        return id;
    }

    /** One line on what the preset lays out. */
    public String description() {
        return description;
    }

    /** The spec to write: fast draws from {@code seed}, weights stored as {@code dtype}. */
    public Spec spec(long seed, DType dtype) {
        return base().seed(seed).dtype(dtype).maxPositions(32768).fast(true);
    }

    /** The preset called {@code id} (as {@link #id()} spells it), if any. */
    public static Optional<RandomPreset> byId(String id) {
        return Arrays.stream(values()).filter(p -> p.id.equals(id.toLowerCase(Locale.ROOT))).findFirst();
    }

    /** Every preset's id, comma-separated. */
    public static String ids() {
        return Arrays.stream(values()).map(RandomPreset::id).collect(Collectors.joining(", "));
    }

    private static Spec mimo(String name, int vocab, int hidden, int layers, int heads, int fullKv, int swaKv,
                             int qkDim, int vDim, int window, int denseUnits, int experts, int topK, int expertUnits) {
        int[] swa = new int[layers];
        int[] moe = new int[layers];
        for (int l = 0; l < layers; l++) {
            swa[l] = l == 0 || (l + 1) % 6 == 0 ? 0 : 1;
            moe[l] = l == 0 ? 0 : 1;
        }
        return Spec.of(name, Arch.MIMO).vocab(vocab).hidden(hidden).layers(layers)
                .swaPattern(swa).moePattern(moe)
                .attention(heads, fullKv, qkDim, vDim).swaAttention(heads, swaKv, qkDim, vDim)
                .partialRotary(0.334).theta(5e6, 1e4).window(window).sinks(true, false).valueScale(0.707)
                .intermediate(denseUnits).experts(experts, topK, expertUnits);
    }
}
