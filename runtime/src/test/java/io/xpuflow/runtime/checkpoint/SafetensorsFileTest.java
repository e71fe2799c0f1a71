package io.xpuflow.runtime.checkpoint;

import static io.xpuflow.runtime.checkpoint.RawFiles.bytes;
import static io.xpuflow.runtime.checkpoint.RawFiles.shorts;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {
    @TempDir
    Path dir;

    @Test
    void roundTripsFloatsLongsAndMetadata() {
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter()
                .metadata("format", "pt")
                .addFloats("w", new float[] {1.5f, -2f, 0f, Float.MAX_VALUE, Float.MIN_VALUE, -0f}, 2, 3)
                .addLongs("ids", new long[] {Long.MIN_VALUE, -1, 0, Long.MAX_VALUE}, 4)
                .addFloats("scalar", new float[] {42f})
                .write(file);

        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThat(st.path()).isEqualTo(file);
            assertThat(st.metadata()).containsExactly(Map.entry("format", "pt"));
            assertThat(st.tensors().keySet()).containsExactly("w", "ids", "scalar");
            TensorInfo w = st.require("w");
            assertThat(w.dtype()).isEqualTo(DType.F32);
            assertThat(w.shape()).containsExactly(2, 3);
            assertThat(w.rank()).isEqualTo(2);
            assertThat(w.numel()).isEqualTo(6);
            assertThat(w.byteSize()).isEqualTo(24);
            assertThat(w.describe()).isEqualTo("F32[2, 3]");
            assertThat(st.readFloats("w")).containsExactly(1.5f, -2f, 0f, Float.MAX_VALUE, Float.MIN_VALUE, -0f);
            assertThat(st.readLongs("ids")).containsExactly(Long.MIN_VALUE, -1, 0, Long.MAX_VALUE);
            TensorInfo scalar = st.require("scalar");
            assertThat(scalar.rank()).isZero();
            assertThat(scalar.numel()).isEqualTo(1);
            assertThat(st.readFloats("scalar")).containsExactly(42f);
        }
    }

    @Test
    void decodesBf16() {
        Path file = write("bf16", DType.BF16, shorts(0x3F80, 0xC000, 0x3E20, 0x7F80), 2, 2);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThat(st.readFloats("bf16")).containsExactly(1f, -2f, 0.15625f, Float.POSITIVE_INFINITY);
        }
    }

    @Test
    void decodesF16() {
        Path file = write("f16", DType.F16, shorts(0x3C00, 0x0001, 0xC000, 0x7BFF, 0x3555), 5);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThat(st.readFloats("f16"))
                    .containsExactly(1f, 0x1p-24f, -2f, 65504f, 0.333251953125f);
        }
    }

    @Test
    void decodesF8E4m3() {
        Path file = write("fp8", DType.F8_E4M3, bytes(0x38, 0x7E, 0x01, 0xB8, 0x00, 0x7F), 6);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            float[] v = st.readFloats("fp8");
            assertThat(Arrays.copyOf(v, 5)).containsExactly(1f, 448f, 0x1p-9f, -1f, 0f);
            assertThat(v[5]).isNaN();
        }
    }

    @Test
    void readsNarrowIntegersSignedAndU8Unsigned() {
        Path file = dir.resolve("ints.safetensors");
        ByteBuffer i32 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(-7).putInt(Integer.MAX_VALUE);
        new SafetensorsWriter()
                .addRaw("i32", DType.I32, i32.array(), 2)
                .addRaw("i16", DType.I16, shorts(-300, 300), 2)
                .addRaw("i8", DType.I8, bytes(-128, 127), 2)
                .addRaw("u8", DType.U8, bytes(0xFF, 0x80), 2)
                .write(file);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThat(st.readLongs("i32")).containsExactly(-7, Integer.MAX_VALUE);
            assertThat(st.readLongs("i16")).containsExactly(-300, 300);
            assertThat(st.readLongs("i8")).containsExactly(-128, 127);
            assertThat(st.readLongs("u8")).containsExactly(255, 128);
        }
    }

    @Test
    void keepsOtherTypesReadableAsRawBytes() {
        byte[] f64 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putDouble(Math.PI).array();
        Path file = dir.resolve("other.safetensors");
        new SafetensorsWriter()
                .addRaw("f64", DType.F64, f64, 1)
                .addRaw("mask", DType.BOOL, bytes(1, 0, 1), 3)
                .write(file);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThat(st.data(st.require("f64")).getDouble(0)).isEqualTo(Math.PI);
            ByteBuffer mask = st.data(st.require("mask"));
            assertThat(mask.remaining()).isEqualTo(3);
            assertThat(mask.get(0)).isEqualTo((byte) 1);
            assertThat(mask.isReadOnly()).isTrue();
        }
    }

    @Test
    void refusesToConvertAcrossKinds() {
        Path file = dir.resolve("kinds.safetensors");
        new SafetensorsWriter()
                .addLongs("ids", new long[] {1}, 1)
                .addFloats("w", new float[] {1f}, 1)
                .addRaw("f64", DType.F64, new byte[8], 1)
                .write(file);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThatThrownBy(() -> st.readFloats("ids")).isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("kinds.safetensors")
                    .hasMessageContaining("'ids'")
                    .hasMessageContaining("I64");
            assertThatThrownBy(() -> st.readFloats("f64")).isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("'f64'").hasMessageContaining("F64");
            assertThatThrownBy(() -> st.readLongs("w")).isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("'w'").hasMessageContaining("F32");
        }
    }

    @Test
    void addressAndDataPointAtTheTensorBytes() {
        Path file = dir.resolve("a.safetensors");
        new SafetensorsWriter()
                .addFloats("a", new float[] {1f, 2f}, 2)
                .addFloats("b", new float[] {3f, 4f, 5f}, 3)
                .write(file);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            TensorInfo a = st.require("a");
            TensorInfo b = st.require("b");
            assertThat(a.begin()).isZero();
            assertThat(b.begin()).isEqualTo(8);
            assertThat(st.address(b) - st.address(a)).isEqualTo(8);
            // The data section starts 8-byte aligned because the header is padded.
            assertThat(st.address(a) % 8).isZero();
            ByteBuffer data = st.data(b);
            assertThat(data.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
            assertThat(data.remaining()).isEqualTo(12);
            // Exactly the tensor: the limit cannot be pushed past its bytes.
            assertThat(data.capacity()).isEqualTo(12);
            assertThat(data.getFloat(8)).isEqualTo(5f);
        }
    }

    @Test
    void emptyTensorsHaveEmptyData() {
        Path file = dir.resolve("empty.safetensors");
        new SafetensorsWriter()
                .addFloats("none", new float[0], 0, 4)
                .addFloats("one", new float[] {7f}, 1)
                .write(file);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThat(st.readFloats("none")).isEmpty();
            assertThat(st.data(st.require("none")).remaining()).isZero();
            assertThat(st.readFloats("one")).containsExactly(7f);
        }
    }

    @Test
    void rejectsTensorInfoFromAnotherFile() {
        Path file = write("x", DType.F32, new byte[4], 1);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            TensorInfo foreign = new TensorInfo("y", DType.F32, new long[] {1}, 0, 4);
            assertThatThrownBy(() -> st.address(foreign)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("is not from");
        }
    }

    @Test
    void findAndRequire() {
        Path file = write("present", DType.F32, new byte[4], 1);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThat(st.find("present")).isPresent();
            assertThat(st.find("absent")).isEmpty();
            assertThatThrownBy(() -> st.require("absent"))
                    .isInstanceOfSatisfying(CheckpointException.class, e -> {
                        assertThat(e.file()).isEqualTo(file);
                        assertThat(e.tensorName()).isEqualTo("absent");
                    })
                    .hasMessageContaining(file.getFileName().toString())
                    .hasMessageContaining("'absent'")
                    .hasMessageContaining("missing tensor");
            assertThatThrownBy(() -> st.readFloats("absent")).isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("'absent'");
        }
    }

    @Test
    void viewsAreUnmodifiable() {
        Path file = write("x", DType.F32, new byte[4], 1);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThatThrownBy(() -> st.tensors().clear()).isInstanceOf(UnsupportedOperationException.class);
            assertThatThrownBy(() -> st.metadata().put("k", "v")).isInstanceOf(UnsupportedOperationException.class);
            long[] shape = st.require("x").shape();
            shape[0] = 99;
            assertThat(st.require("x").shape()).containsExactly(1);
        }
    }

    @Test
    void closeIsIdempotentAndInvalidatesData() {
        Path file = write("x", DType.F32, new byte[4], 1);
        SafetensorsFile st = SafetensorsFile.open(file);
        TensorInfo x = st.require("x");
        st.close();
        st.close();
        assertThatThrownBy(() -> st.address(x)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining(file.toString());
        assertThatThrownBy(() -> st.readFloats("x")).isInstanceOf(IllegalStateException.class);
        // The header stays available: it was parsed, not mapped.
        assertThat(st.tensors()).containsKey("x");
    }

    @Test
    void writerPadsTheHeaderWithSpacesToAMultipleOf8() throws IOException {
        Path file = write("abc", DType.U8, new byte[3], 3);
        byte[] raw = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertThat(n % 8).isZero();
        String header = new String(raw, 8, (int) n, StandardCharsets.UTF_8);
        assertThat(header).startsWith("{\"abc\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}");
        assertThat(header.strip()).isEqualTo(header.substring(0, header.lastIndexOf('}') + 1));
        assertThat(raw.length).isEqualTo(8 + n + 3);
    }

    @Test
    void writerValidatesItsInput() {
        SafetensorsWriter w = new SafetensorsWriter();
        assertThatThrownBy(() -> w.addFloats("f", new float[3], 2, 2))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'f'");
        assertThatThrownBy(() -> w.addRaw("r", DType.BF16, new byte[3], 2))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'r'")
                .hasMessageContaining("3 bytes");
        assertThatThrownBy(() -> w.addLongs("n", new long[0], -1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative");
        assertThatThrownBy(() -> w.addLongs("__metadata__", new long[] {1}))
                .isInstanceOf(IllegalArgumentException.class);
        w.addLongs("dup", new long[] {1});
        assertThatThrownBy(() -> w.addLongs("dup", new long[] {1}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("twice");
    }

    @Test
    void streamedTensorsAreWrittenInOrderWithTheKeptOnes() {
        Path file = dir.resolve("streamed.safetensors");
        SafetensorsWriter w = new SafetensorsWriter()
                .addFloats("kept", new float[] {1f, 2f}, 2)
                .addStreamed("late", DType.BF16, out -> {
                    out.write(new byte[] {(byte) 0x80, 0x3F}); // 1.0
                    out.write(0x00);
                    out.write(0xC0); // -2.0
                    out.close(); // must not close the file
                }, 2)
                .addStreamed("empty", DType.F32, out -> { }, 0);
        assertThat(w.size()).isEqualTo(3);
        long expected = w.fileSize();
        w.write(file);
        assertThat(file).hasSize(expected);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThat(st.tensors().keySet()).containsExactly("kept", "late", "empty");
            assertThat(st.readFloats("kept")).containsExactly(1f, 2f);
            assertThat(st.readFloats("late")).containsExactly(1f, -2f);
            assertThat(st.require("empty").numel()).isZero();
        }
    }

    @Test
    void aStreamedTensorOfTheWrongSizeFailsNamingIt() {
        Path file = dir.resolve("short.safetensors");
        SafetensorsWriter w = new SafetensorsWriter().addStreamed("w", DType.F32, out -> out.write(new byte[7]), 2);
        assertThatThrownBy(() -> w.write(file))
                .isInstanceOfSatisfying(CheckpointException.class, e -> assertThat(e.tensorName()).isEqualTo("w"))
                .hasMessageContaining("wrote 7 bytes but F32[2] needs 8");
    }

    @Test
    void writeFailureNamesTheFile() {
        Path target = dir.resolve("no-such-dir").resolve("out.safetensors");
        assertThatThrownBy(() -> new SafetensorsWriter().addFloats("x", new float[] {1f}).write(target))
                .isInstanceOfSatisfying(CheckpointException.class, e -> assertThat(e.file()).isEqualTo(target))
                .hasMessageContaining("out.safetensors");
    }

    private Path write(String name, DType dtype, byte[] bytes, long... shape) {
        Path file = dir.resolve(name + ".safetensors");
        new SafetensorsWriter().addRaw(name, dtype, bytes, shape).write(file);
        return file;
    }
}
