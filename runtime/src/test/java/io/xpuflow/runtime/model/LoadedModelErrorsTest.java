package io.xpuflow.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.runtime.checkpoint.Checkpoint;
import io.xpuflow.runtime.checkpoint.CheckpointException;
import io.xpuflow.runtime.checkpoint.DType;
import io.xpuflow.runtime.checkpoint.SafetensorsFile;
import io.xpuflow.runtime.checkpoint.SafetensorsWriter;
import io.xpuflow.runtime.checkpoint.TensorInfo;
import io.xpuflow.runtime.config.ModelConfigException;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Broken checkpoints never crash the loader: each is a {@link CheckpointException} or
 * {@link ModelConfigException} naming the file and the tensor (or field). Also the sharded layout and
 * {@link ModelRunner}'s checks of its input.
 */
class LoadedModelErrorsTest {
    private static final JsonMapper JSON = new JsonMapper();
    private static final LoadOptions OPTIONS = new LoadOptions(1, 16, 2);
    private static final String MIMO = "tiny-mimo-v2";
    private static final String FP8 = "tiny-mimo-v2-fp8";
    /** Longer than the sliding window (8) and than one step (16 tokens), so both are exercised. */
    private static final int[] PROMPT = {3, 17, 42, 100, 7, 250, 11, 400, 9, 33, 1, 2, 200, 64, 77, 5, 300, 12, 8, 41};

    @TempDir
    Path tmp;

    /** One tensor's header entry and bytes, as read from a fixture. */
    record Tensor(String name, DType dtype, long[] shape, byte[] bytes) {
        Tensor withShape(long[] newShape, byte[] newBytes) {
            return new Tensor(name, dtype, newShape, newBytes);
        }
    }

    // ---------------------------------------------------------------- safetensors file damage

    @Test
    void truncatedInTheDataSection() throws IOException {
        Path dir = copy(MIMO);
        Path file = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        long dataStart = 8 + headerLength;
        int cut = (int) (dataStart + (all.length - dataStart) / 2);
        Files.write(file, Arrays.copyOf(all, cut));
        // the first tensor in header order whose bytes no longer fit
        String victim;
        try (SafetensorsFile original = SafetensorsFile.open(Fixtures.model(MIMO).resolve("model.safetensors"))) {
            victim = original.tensors().values().stream().filter(t -> t.end() > cut - dataStart).findFirst()
                    .orElseThrow().name();
        }

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(file.toString(), "tensor '" + victim + "'", "data_offsets",
                        "past the data section of " + (cut - dataStart) + " bytes");
    }

    @Test
    void headerLengthPastTheEnd() throws IOException {
        Path dir = copy(MIMO);
        Path file = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(file);
        ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, all.length);
        Files.write(file, all);

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(file.toString(), "header length " + all.length,
                        "past the end of the file of " + all.length + " bytes");
    }

    @Test
    void noWeightsAtAll() throws IOException {
        Path dir = copy(MIMO);
        Files.delete(dir.resolve("model.safetensors"));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(dir.toString(), "no weights", "model.safetensors");
    }

    // ---------------------------------------------------------------- tensors against the config

    @Test
    void missingTensor() throws IOException {
        String k = "model.layers.1.self_attn.k_proj.weight";
        Path dir = copyWith(MIMO, ts -> remove(ts, k));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(dir.resolve("model.safetensors").toString(), "tensor '" + k + "'", "missing",
                        "k of layer 1");
    }

    @Test
    void tensorWithTheWrongShape() throws IOException {
        String q = "model.layers.0.self_attn.q_proj.weight";
        Path dir = copyWith(MIMO, ts -> replace(ts, q, t -> t.withShape(new long[] {191, 64},
                Arrays.copyOf(t.bytes(), 191 * 64 * 2))));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(dir.resolve("model.safetensors").toString(), "tensor '" + q + "'",
                        "BF16[191, 64]", "config.json implies [192, 64]", "layer 0");
    }

    @Test
    void expertWithTheWrongShapeNamesTheExpert() throws IOException {
        String down = "model.layers.2.mlp.experts.5.down_proj.weight";
        // [64, 32] stored transposed as [32, 64]: same bytes, wrong shape
        Path dir = copyWith(MIMO, ts -> replace(ts, down, t -> t.withShape(new long[] {32, 64}, t.bytes())));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll("tensor '" + down + "'", "BF16[32, 64]", "[64, 32]", "layer 2", "expert 5");
    }

    @Test
    void tensorWithANonWeightDtype() throws IOException {
        String norm = "model.layers.0.input_layernorm.weight";
        Path dir = copyWith(MIMO, ts -> replace(ts, norm, t -> new Tensor(norm, DType.I64, t.shape(), new byte[64 * 8])));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(dir.resolve("model.safetensors").toString(), "tensor '" + norm + "'",
                        "dtype I64", "cannot hold weights");
    }

    @Test
    void fp8WeightWithoutItsScale() throws IOException {
        String q = "model.layers.2.self_attn.q_proj.weight";
        Path dir = copyWith(FP8, ts -> remove(ts, q + "_scale_inv"));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(dir.resolve("model.safetensors").toString(),
                        "tensor '" + q + "_scale_inv'", "missing", "FP8 weight '" + q + "'");
    }

    @Test
    void fp8ScaleWithTheWrongShape() throws IOException {
        String scale = "model.layers.0.self_attn.q_proj.weight_scale_inv";
        // [12, 4] for 192x64 in 16x16 blocks; keep only 3 columns of blocks
        Path dir = copyWith(FP8, ts -> replace(ts, scale, t -> t.withShape(new long[] {12, 3},
                Arrays.copyOf(t.bytes(), 12 * 3 * 4))));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(dir.resolve("model.safetensors").toString(), "tensor '" + scale + "'",
                        "F32[12, 3]", "F32[12, 4]", "192x64", "16x16");
    }

    @Test
    void fp8ScaleWithTheWrongDtype() throws IOException {
        String scale = "model.layers.0.mlp.up_proj.weight_scale_inv";
        Path dir = copyWith(FP8, ts -> replace(ts, scale, t -> new Tensor(scale, DType.BF16, t.shape(),
                Arrays.copyOf(t.bytes(), t.bytes().length / 2))));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll("tensor '" + scale + "'", "BF16[8, 4]", "F32[8, 4]");
    }

    @Test
    void fp8WeightWithoutQuantizationConfig() throws IOException {
        Path dir = copy(FP8);
        editConfig(dir, j -> j.remove("quantization_config"));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(dir.resolve("model.safetensors").toString(),
                        "tensor 'model.layers.0.self_attn.q_proj.weight'", "F8_E4M3", "quantization_config");
    }

    @Test
    void fp8NormWeight() throws IOException {
        String norm = "model.norm.weight";
        Path dir = copyWith(FP8, ts -> replace(ts, norm, t -> new Tensor(norm, DType.F8_E4M3, t.shape(),
                new byte[64])));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll("tensor '" + norm + "'", "1-D F8_E4M3");
    }

    @Test
    void missingExpert() throws IOException {
        String gate = "model.layers.3.mlp.experts.7.gate_proj.weight";
        Path dir = copyWith(MIMO, ts -> ts.removeIf(t -> t.name().startsWith("model.layers.3.mlp.experts.7.")));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(dir.resolve("model.safetensors").toString(), "tensor '" + gate + "'", "missing",
                        "expert_gate of layer 3, expert 7");
    }

    @Test
    void missingLmHeadWhenNotTied() throws IOException {
        Path dir = copyWith(MIMO, ts -> remove(ts, "lm_head.weight"));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(dir.resolve("model.safetensors").toString(), "tensor 'lm_head.weight'",
                        "missing", "lm_head");
    }

    @Test
    void tiedModelNeedsNoLmHead() throws IOException {
        // stories260k is tied and ships none; untying it makes lm_head.weight required
        Path dir = copy("stories260k");
        editConfig(dir, j -> j.put("tie_word_embeddings", false));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll("tensor 'lm_head.weight'", "missing");
    }

    @Test
    void missingMtpTensor() throws IOException {
        String enorm = "model.mtp.layers.0.enorm.weight";
        Path dir = copyWith(MIMO, ts -> remove(ts, enorm));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(dir.resolve("model.safetensors").toString(), "tensor '" + enorm + "'", "missing",
                        "mtp_enorm of MTP layer 0");
    }

    @Test
    void badConfigStopsTheLoadWithAConfigError() throws IOException {
        Path dir = copy(MIMO);
        editConfig(dir, j -> j.put("num_key_value_heads", 3));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(ModelConfigException.class)
                .hasMessageContainingAll(dir.resolve("config.json").toString(), "'num_attention_heads'");
    }

    @Test
    void configDisagreeingWithTheWeights() throws IOException {
        // 16 experts in the config, 8 in the checkpoint: expert 8 of the first MoE layer is missing
        Path dir = copy(MIMO);
        editConfig(dir, j -> j.put("n_routed_experts", 16));

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll("tensor 'model.layers.1.mlp.gate.weight'", "F32[8, 64]", "[16, 64]");
    }

    // ---------------------------------------------------------------- sharded

    @Test
    void shardedCheckpointGivesTheSameLogits() throws IOException {
        Path dir = copy(MIMO);
        Files.delete(dir.resolve("model.safetensors"));
        List<Tensor> all = read(Fixtures.model(MIMO).resolve("model.safetensors"));
        Map<String, String> weightMap = new LinkedHashMap<>();
        SafetensorsWriter a = new SafetensorsWriter().metadata("format", "pt");
        SafetensorsWriter b = new SafetensorsWriter().metadata("format", "pt");
        for (int i = 0; i < all.size(); i++) {
            Tensor t = all.get(i);
            boolean first = i < all.size() / 2;
            (first ? a : b).addRaw(t.name(), t.dtype(), t.bytes(), t.shape());
            weightMap.put(t.name(), first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
        }
        a.write(dir.resolve("model-00001-of-00002.safetensors"));
        b.write(dir.resolve("model-00002-of-00002.safetensors"));
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", all.stream().mapToLong(t -> t.bytes().length).sum());
        weightMap.forEach(index.putObject("weight_map")::put);
        JSON.writeValue(dir.resolve(Checkpoint.INDEX_FILE).toFile(), index);

        ModelRunner.Scores expected;
        try (LoadedModel model = LoadedModel.load(Fixtures.model(MIMO), OPTIONS);
             ModelRunner runner = new ModelRunner(model, 32, 1)) {
            expected = runner.score(PROMPT, true, true);
        }
        try (LoadedModel model = LoadedModel.load(dir, OPTIONS); ModelRunner runner = new ModelRunner(model, 32, 1)) {
            assertThat(model.config().mtpLayers()).hasSize(1);
            ModelRunner.Scores got = runner.score(PROMPT, true, true);
            assertThat(got.logits()).isDeepEqualTo(expected.logits());
            assertThat(got.mtpLogits()).isDeepEqualTo(expected.mtpLogits());
            assertThat(got.experts()).isDeepEqualTo(expected.experts());
        }
    }

    @Test
    void shardedCheckpointWithATensorMissingFromTheIndex() throws IOException {
        String k = "model.layers.4.self_attn.k_proj.weight";
        Path dir = copy(MIMO);
        Files.delete(dir.resolve("model.safetensors"));
        List<Tensor> all = read(Fixtures.model(MIMO).resolve("model.safetensors"));
        remove(all, k);
        write(dir.resolve("model-00001-of-00001.safetensors"), all);
        ObjectNode index = JSON.createObjectNode();
        ObjectNode map = index.putObject("weight_map");
        all.forEach(t -> map.put(t.name(), "model-00001-of-00001.safetensors"));
        JSON.writeValue(dir.resolve(Checkpoint.INDEX_FILE).toFile(), index);

        assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContainingAll(Checkpoint.INDEX_FILE, "tensor '" + k + "'", "missing");
    }

    // ---------------------------------------------------------------- alignment

    @Test
    void tensorsAtOddOffsetsLoadInEveryWeightFormat() throws IOException {
        // a one-byte tensor first puts every weight, norm and FP8 scale at an odd offset, as safetensors allows
        // (a scale after an FP8 weight of odd size); the device read scales through misaligned float pointers
        // when it packed BF16 weights (UBSan: "load of misaligned address" under -Pasan)
        for (String fixture : List.of(FP8, MIMO)) {
            Path dir = copyWith(fixture, ts -> ts.add(0, new Tensor("aaa.padding", DType.U8, new long[] {1}, new byte[1])));
            try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
                assertThat(f.tensors().values()).filteredOn(t -> t.byteSize() > 1).allMatch(t -> t.begin() % 2 == 1);
            }
            for (io.xpuflow.device.WeightFormat format : List.of(io.xpuflow.device.WeightFormat.EXACT,
                    io.xpuflow.device.WeightFormat.BF16)) {
                LoadOptions options = OPTIONS.withWeightFormat(format);
                float[][] expected;
                try (LoadedModel model = LoadedModel.load(Fixtures.model(fixture), options);
                     ModelRunner runner = new ModelRunner(model, 32, 1)) {
                    expected = runner.score(PROMPT, false, false).logits();
                }
                try (LoadedModel model = LoadedModel.load(dir, options); ModelRunner runner = new ModelRunner(model, 32, 1)) {
                    assertThat(runner.score(PROMPT, false, false).logits()).as("%s, %s", fixture, format)
                            .isDeepEqualTo(expected);
                }
            }
        }
    }

    // ---------------------------------------------------------------- no state leaks from a failed load

    @Test
    void aModelLoadsAfterFailedLoads() throws IOException {
        Path dir = copyWith(MIMO, ts -> remove(ts, "model.layers.5.mlp.experts.0.up_proj.weight"));
        for (int i = 0; i < 5; i++) {
            assertThatThrownBy(() -> LoadedModel.load(dir, OPTIONS)).isInstanceOf(CheckpointException.class);
        }
        // the same directory, repaired, loads and gives the fixture's logits
        Files.copy(Fixtures.model(MIMO).resolve("model.safetensors"), dir.resolve("model.safetensors"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        float[][] repaired;
        try (LoadedModel model = LoadedModel.load(dir, OPTIONS); ModelRunner runner = new ModelRunner(model, 32, 1)) {
            repaired = runner.score(PROMPT, false, false).logits();
        }
        try (LoadedModel model = LoadedModel.load(Fixtures.model(MIMO), OPTIONS);
             ModelRunner runner = new ModelRunner(model, 32, 1)) {
            assertThat(runner.score(PROMPT, false, false).logits()).isDeepEqualTo(repaired);
            assertThat(runner.generateGreedy(new int[] {1, 2, 3}, 4, true)).hasSize(4);
        }
    }

    // ---------------------------------------------------------------- runner input

    @Test
    void runnerRejectsBadPrompts() {
        try (LoadedModel model = LoadedModel.load(Fixtures.model("stories260k"), OPTIONS);
             ModelRunner runner = new ModelRunner(model, 32, 1)) {
            assertThatThrownBy(() -> runner.score(new int[0], false, false))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("empty prompt");
            assertThatThrownBy(() -> runner.score(new int[] {1, 512}, false, false))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContainingAll("token id 512", "position 1", "vocabulary of 512");
            assertThatThrownBy(() -> runner.score(new int[] {1, 5, -1}, false, false))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContainingAll("token id -1", "position 2", "vocabulary of 512");
            assertThatThrownBy(() -> runner.score(new int[33], false, false))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContainingAll("33 tokens", "context of 32");
            assertThatThrownBy(() -> runner.score(new int[] {1, 2}, true, false))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContainingAll("LlamaForCausalLM", "no MTP");

            assertThatThrownBy(() -> runner.generateGreedy(new int[0], 4, true))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("empty prompt");
            assertThatThrownBy(() -> runner.generateGreedy(new int[] {1, 99999}, 4, true))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContainingAll("token id 99999", "512");
            assertThatThrownBy(() -> runner.generateGreedy(new int[] {-7}, 4, true))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id -7");
            assertThatThrownBy(() -> runner.generateGreedy(new int[40], 1, true))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContainingAll("40 tokens", "context of 32");
            assertThatThrownBy(() -> runner.generateGreedy(new int[30], 3, true))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContainingAll("30 tokens", "3 new tokens", "context of 32");
            assertThatThrownBy(() -> runner.generateGreedy(new int[] {1}, -1, true))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-1");

            // the runner still works after rejecting all of those
            assertThat(runner.score(new int[] {1, 2, 3}, false, false).logits()).hasDimensions(3, 512);
        }
    }

    @Test
    void runnerRejectsBadSizes() {
        try (LoadedModel model = LoadedModel.load(Fixtures.model("stories260k"), OPTIONS)) {
            assertThatThrownBy(() -> new ModelRunner(model, 0, 1))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("maxContext");
            assertThatThrownBy(() -> new ModelRunner(model, 16, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("maxSeqs");
            try (ModelRunner runner = new ModelRunner(model, 16, 1)) {
                assertThatThrownBy(() -> runner.scoreBatch(List.of(new int[] {1}, new int[] {2}), false, false))
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContainingAll("2 prompts", "1 sequences");
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    /** Copies every file of a fixture into a fresh directory under {@link #tmp}. */
    private Path copy(String fixture) throws IOException {
        Path dir = Files.createTempDirectory(tmp, fixture);
        try (Stream<Path> files = Files.list(Fixtures.model(fixture))) {
            for (Path f : files.toList()) {
                if (Files.isRegularFile(f)) {
                    Files.copy(f, dir.resolve(f.getFileName()));
                }
            }
        }
        return dir;
    }

    /** A copy of the fixture whose model.safetensors holds the fixture's tensors as {@code edit} leaves them. */
    private Path copyWith(String fixture, Consumer<List<Tensor>> edit) throws IOException {
        Path dir = copy(fixture);
        List<Tensor> tensors = read(Fixtures.model(fixture).resolve("model.safetensors"));
        edit.accept(tensors);
        write(dir.resolve("model.safetensors"), tensors);
        return dir;
    }

    private static List<Tensor> read(Path file) {
        List<Tensor> out = new ArrayList<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (TensorInfo t : f.tensors().values()) {
                ByteBuffer data = f.data(t);
                byte[] bytes = new byte[data.remaining()];
                data.get(bytes);
                out.add(new Tensor(t.name(), t.dtype(), t.shape(), bytes));
            }
        }
        return out;
    }

    private static void write(Path file, List<Tensor> tensors) {
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        tensors.forEach(t -> w.addRaw(t.name(), t.dtype(), t.bytes(), t.shape()));
        w.write(file);
    }

    private static void remove(List<Tensor> tensors, String name) {
        assertThat(tensors.removeIf(t -> t.name().equals(name))).as("fixture has %s", name).isTrue();
    }

    private static void replace(List<Tensor> tensors, String name, java.util.function.UnaryOperator<Tensor> change) {
        boolean found = false;
        for (int i = 0; i < tensors.size(); i++) {
            if (tensors.get(i).name().equals(name)) {
                tensors.set(i, change.apply(tensors.get(i)));
                found = true;
            }
        }
        assertThat(found).as("fixture has %s", name).isTrue();
    }

    private static void editConfig(Path dir, Consumer<ObjectNode> edit) throws IOException {
        Path file = dir.resolve("config.json");
        ObjectNode json = (ObjectNode) JSON.readTree(file.toFile());
        edit.accept(json);
        JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), json);
    }
}
