package io.xpuflow.runtime.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
    private static final String INDEX = Checkpoint.INDEX_FILE;
    private static final String SHARD1 = "model-00001-of-00002.safetensors";
    private static final String SHARD2 = "model-00002-of-00002.safetensors";

    @TempDir
    Path dir;

    @Test
    void opensTwoShardsThroughTheIndex() throws IOException {
        writeShards();
        index("{\"metadata\": {\"total_size\": 28}, \"weight_map\": {"
                + "\"embed\": \"" + SHARD1 + "\", \"norm\": \"" + SHARD2 + "\", \"lm_head\": \"" + SHARD2 + "\"}}");

        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThat(ckpt.dir()).isEqualTo(dir);
            assertThat(ckpt.names()).containsExactly("embed", "norm", "lm_head");
            TensorRef embed = ckpt.require("embed");
            assertThat(embed.file().path()).isEqualTo(dir.resolve(SHARD1));
            assertThat(embed.dtype()).isEqualTo(DType.F32);
            assertThat(embed.shape()).containsExactly(2, 2);
            assertThat(embed.readFloats()).containsExactly(1f, 2f, 3f, 4f);
            TensorRef head = ckpt.require("lm_head");
            assertThat(head.file().path()).isEqualTo(dir.resolve(SHARD2));
            assertThat(head.readFloats()).containsExactly(6f, 7f);
            assertThat(head.address()).isEqualTo(head.file().address(head.info()));
            // Both tensors of shard 2 come from one open file.
            assertThat(ckpt.require("norm").file()).isSameAs(head.file());
            assertThat(ckpt.find("norm")).isPresent();
            assertThat(ckpt.find("absent")).isEmpty();
        }
    }

    @Test
    void opensASingleFileAndIgnoresOtherSafetensorsFiles() {
        new SafetensorsWriter().addFloats("w", new float[] {1f, 2f}, 2).write(dir.resolve("model.safetensors"));
        new SafetensorsWriter().addFloats("logits", new float[] {9f}, 1).write(dir.resolve("golden.safetensors"));

        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThat(ckpt.names()).containsExactly("w");
            assertThat(ckpt.require("w").readFloats()).containsExactly(1f, 2f);
            assertThat(ckpt.find("logits")).isEmpty();
        }
    }

    @Test
    void indexWinsOverASingleFile() throws IOException {
        writeShards();
        index("{\"weight_map\": {\"embed\": \"" + SHARD1 + "\"}}");
        new SafetensorsWriter().addFloats("stale", new float[] {0f}).write(dir.resolve("model.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThat(ckpt.names()).containsExactly("embed");
        }
    }

    @Test
    void indexNamingAMissingShard() throws IOException {
        writeShards();
        index("{\"weight_map\": {\"embed\": \"" + SHARD1 + "\", \"extra\": \"model-00003.safetensors\"}}");
        assertThatThrownBy(() -> Checkpoint.open(dir))
                .isInstanceOfSatisfying(CheckpointException.class, e -> {
                    assertThat(e.file()).isEqualTo(dir.resolve(INDEX));
                    assertThat(e.tensorName()).isEqualTo("extra");
                })
                .hasMessageContaining(INDEX)
                .hasMessageContaining("shard 'model-00003.safetensors' does not exist");
    }

    @Test
    void indexMappingATensorItsShardDoesNotHave() throws IOException {
        writeShards();
        index("{\"weight_map\": {\"embed\": \"" + SHARD1 + "\", \"norm\": \"" + SHARD1 + "\"}}");
        assertThatThrownBy(() -> Checkpoint.open(dir))
                .isInstanceOfSatisfying(CheckpointException.class, e -> assertThat(e.tensorName()).isEqualTo("norm"))
                .hasMessageContaining(INDEX)
                .hasMessageContaining("tensor 'norm'")
                .hasMessageContaining("shard '" + SHARD1 + "', which does not contain it");
    }

    @Test
    void malformedShardIsReportedAgainstTheShard() throws IOException {
        writeShards();
        Files.write(dir.resolve(SHARD2), new byte[3]);
        index("{\"weight_map\": {\"embed\": \"" + SHARD1 + "\", \"norm\": \"" + SHARD2 + "\"}}");
        assertThatThrownBy(() -> Checkpoint.open(dir))
                .isInstanceOfSatisfying(CheckpointException.class,
                        e -> assertThat(e.file()).isEqualTo(dir.resolve(SHARD2)))
                .hasMessageContaining("too short");
    }

    @Test
    void indexWithoutWeightMap() throws IOException {
        index("{\"metadata\": {}}");
        assertThatThrownBy(() -> Checkpoint.open(dir)).isInstanceOf(CheckpointException.class)
                .hasMessageContaining(INDEX).hasMessageContaining("no 'weight_map' object");
    }

    @Test
    void indexNotJson() throws IOException {
        index("{\"weight_map\": ");
        assertThatThrownBy(() -> Checkpoint.open(dir)).isInstanceOf(CheckpointException.class)
                .hasMessageContaining(INDEX).hasMessageContaining("not valid JSON: unexpected end at line 1, column 16");
    }

    @Test
    void indexShardNamesMustBePlainFileNames() throws IOException {
        index("{\"weight_map\": {\"embed\": \"../elsewhere/" + SHARD1 + "\"}}");
        assertThatThrownBy(() -> Checkpoint.open(dir)).isInstanceOf(CheckpointException.class)
                .hasMessageContaining(INDEX).hasMessageContaining("tensor 'embed'")
                .hasMessageContaining("is not a shard file name");
        index("{\"weight_map\": {\"embed\": 1}}");
        assertThatThrownBy(() -> Checkpoint.open(dir)).isInstanceOf(CheckpointException.class)
                .hasMessageContaining("weight_map entry 1 is not a shard file name");
    }

    @Test
    void noWeightsAtAll() {
        new SafetensorsWriter().addFloats("logits", new float[] {9f}, 1).write(dir.resolve("golden.safetensors"));
        assertThatThrownBy(() -> Checkpoint.open(dir))
                .isInstanceOfSatisfying(CheckpointException.class, e -> {
                    assertThat(e.file()).isEqualTo(dir);
                    assertThat(e.tensorName()).isNull();
                })
                .hasMessageContaining(dir.toString())
                .hasMessageContaining(INDEX)
                .hasMessageContaining("model.safetensors");
    }

    @Test
    void notADirectory() {
        Path missing = dir.resolve("nope");
        assertThatThrownBy(() -> Checkpoint.open(missing)).isInstanceOf(CheckpointException.class)
                .hasMessageContaining(missing.toString()).hasMessageContaining("not a directory");
    }

    @Test
    void requireMissingTensorNamesTheSourceAndTensor() throws IOException {
        new SafetensorsWriter().addFloats("w", new float[] {1f}).write(dir.resolve("model.safetensors"));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThatThrownBy(() -> ckpt.require("lm_head.weight"))
                    .isInstanceOfSatisfying(CheckpointException.class,
                            e -> assertThat(e.tensorName()).isEqualTo("lm_head.weight"))
                    .hasMessageContaining(dir.resolve("model.safetensors").toString())
                    .hasMessageContaining("tensor 'lm_head.weight'")
                    .hasMessageContaining("missing tensor");
        }
        writeShards();
        index("{\"weight_map\": {\"embed\": \"" + SHARD1 + "\"}}");
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertThatThrownBy(() -> ckpt.require("norm")).isInstanceOf(CheckpointException.class)
                    .hasMessageContaining(INDEX)
                    .hasMessageContaining("tensor 'norm'")
                    .hasMessageContaining("missing tensor");
        }
    }

    @Test
    void closeClosesEveryShardAndIsIdempotent() throws IOException {
        writeShards();
        index("{\"weight_map\": {\"embed\": \"" + SHARD1 + "\", \"norm\": \"" + SHARD2 + "\"}}");
        Checkpoint ckpt = Checkpoint.open(dir);
        TensorRef embed = ckpt.require("embed");
        TensorRef norm = ckpt.require("norm");
        ckpt.close();
        ckpt.close();
        assertThatThrownBy(embed::address).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(norm::address).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void tensorRefRejectsAMismatchedName() {
        new SafetensorsWriter().addFloats("w", new float[] {1f}).write(dir.resolve("model.safetensors"));
        try (SafetensorsFile file = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            assertThatThrownBy(() -> new TensorRef("v", file.require("w"), file))
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }

    private void writeShards() {
        new SafetensorsWriter()
                .addFloats("embed", new float[] {1f, 2f, 3f, 4f}, 2, 2)
                .write(dir.resolve(SHARD1));
        new SafetensorsWriter()
                .addFloats("norm", new float[] {5f}, 1)
                .addFloats("lm_head", new float[] {6f, 7f}, 1, 2)
                .write(dir.resolve(SHARD2));
    }

    private void index(String json) throws IOException {
        Files.writeString(dir.resolve(INDEX), json);
    }
}
