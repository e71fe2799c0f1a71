package io.xpuflow.runtime.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every malformation {@link SafetensorsFile#open} detects, each reported with file, tensor and problem. */
class SafetensorsCorruptionTest {
    private static final String Q = "model.layers.0.self_attn.q_proj.weight";

    @TempDir
    Path dir;

    @Test
    void fileShorterThanTheLengthField() throws IOException {
        Path file = Files.write(dir.resolve("short.safetensors"), new byte[5]);
        assertCorrupt(file, null, "5 bytes", "too short");
    }

    @Test
    void emptyFile() throws IOException {
        Path file = Files.write(dir.resolve("empty.safetensors"), new byte[0]);
        assertCorrupt(file, null, "0 bytes", "too short");
    }

    @Test
    void missingFile() {
        assertCorrupt(dir.resolve("absent.safetensors"), null, "no such file");
    }

    @Test
    void headerLengthPastTheEndOfTheFile() throws IOException {
        Path file = RawFiles.withLength(dir.resolve("trunc.safetensors"), 1000, new byte[20]);
        assertCorrupt(file, null, "header length 1000", "past the end of the file of 28 bytes");
    }

    @Test
    void absurdHeaderLength() throws IOException {
        Path file = RawFiles.withLength(dir.resolve("huge.safetensors"), 200L << 20, new byte[20]);
        assertCorrupt(file, null, "header length " + (200L << 20), "exceeds the limit");
    }

    @Test
    void headerLengthAbove2To63IsReportedUnsigned() throws IOException {
        Path file = RawFiles.withLength(dir.resolve("neg.safetensors"), -1, new byte[20]);
        assertCorrupt(file, null, "header length 18446744073709551615", "exceeds the limit");
    }

    @Test
    void headerNotValidJson() throws IOException {
        Path file = RawFiles.withHeader(dir.resolve("json.safetensors"), "{\"w\": {\"dtype\": ", 0);
        assertCorrupt(file, null, "header is not valid JSON");
    }

    @Test
    void headerNotUtf8() throws IOException {
        byte[] header = RawFiles.concat("{\"".getBytes(), RawFiles.bytes(0xFF, 0xFE, '"', ':', '{', '}', '}'));
        Path file = RawFiles.withLength(dir.resolve("utf8.safetensors"), header.length, header);
        assertCorrupt(file, null, "header is not valid JSON");
    }

    @Test
    void headerWithTrailingGarbage() throws IOException {
        Path file = RawFiles.withHeader(dir.resolve("trail.safetensors"), "{} {}", 0);
        assertCorrupt(file, null, "header is not valid JSON");
    }

    @Test
    void duplicateTensorName() throws IOException {
        String entry = "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}";
        Path file = RawFiles.withHeader(dir.resolve("dup.safetensors"), "{\"w\":" + entry + ",\"w\":" + entry + "}", 1);
        assertCorrupt(file, null, "header is not valid JSON", "Duplicate field 'w'");
    }

    @Test
    void emptyHeader() throws IOException {
        Path file = RawFiles.withHeader(dir.resolve("blank.safetensors"), "", 4);
        assertCorrupt(file, null, "header is not a JSON object");
    }

    @Test
    void headerNotAnObject() throws IOException {
        Path file = RawFiles.withHeader(dir.resolve("array.safetensors"), "[1, 2]", 0);
        assertCorrupt(file, null, "header is not a JSON object but array");
    }

    @Test
    void entryNotAnObject() throws IOException {
        Path file = RawFiles.withHeader(dir.resolve("entry.safetensors"), "{\"" + Q + "\": 5}", 0);
        assertCorrupt(file, Q, "header entry is not a JSON object");
    }

    @Test
    void missingDtype() throws IOException {
        assertCorrupt(entry("\"shape\":[1],\"data_offsets\":[0,4]", 4), Q, "'dtype' is missing");
    }

    @Test
    void dtypeNotAString() throws IOException {
        assertCorrupt(entry("\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]", 4), Q,
                "'dtype' is 7, expected a string");
    }

    @Test
    void unknownDtype() throws IOException {
        assertCorrupt(entry("\"dtype\":\"F4\",\"shape\":[1],\"data_offsets\":[0,4]", 4), Q, "unknown dtype 'F4'");
    }

    @Test
    void missingShape() throws IOException {
        assertCorrupt(entry("\"dtype\":\"F32\",\"data_offsets\":[0,4]", 4), Q, "'shape' is missing");
    }

    @Test
    void shapeNotAnArray() throws IOException {
        assertCorrupt(entry("\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]", 4), Q,
                "'shape' is \"1\", expected an array of integers");
    }

    @Test
    void shapeWithNonIntegerDimension() throws IOException {
        assertCorrupt(entry("\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]", 4), Q,
                "'shape' is [1.5], expected an array of integers");
    }

    @Test
    void negativeShapeDimension() throws IOException {
        assertCorrupt(entry("\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]", 4), Q,
                "negative dimension in shape [2, -1]");
    }

    @Test
    void missingDataOffsets() throws IOException {
        assertCorrupt(entry("\"dtype\":\"F32\",\"shape\":[1]", 4), Q, "'data_offsets' is missing");
    }

    @Test
    void dataOffsetsNotTwoIntegers() throws IOException {
        assertCorrupt(entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]", 8), Q,
                "'data_offsets' is [0,4,8], expected an array of two integers");
        assertCorrupt(entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]", 8), Q,
                "expected an array of two integers");
    }

    @Test
    void negativeDataOffset() throws IOException {
        assertCorrupt(entry("\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[-4,0]", 4), Q,
                "data_offsets [-4, 0] are negative");
    }

    @Test
    void beginAfterEnd() throws IOException {
        assertCorrupt(entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]", 8), Q,
                "data_offsets [8, 4] begin after end");
    }

    @Test
    void endPastTheDataSection() throws IOException {
        Path file = entry("\"dtype\":\"BF16\",\"shape\":[512,64],\"data_offsets\":[10,99999]", 4096);
        String problem = "data_offsets [10, 99999] end past the data section of 4096 bytes";
        CheckpointException e = assertCorrupt(file, Q, problem);
        assertThat(e).hasMessage(file + ": tensor '" + Q + "': " + problem);
    }

    @Test
    void byteLengthDisagreesWithShape() throws IOException {
        assertCorrupt(entry("\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]", 8), Q,
                "data_offsets [0, 8] hold 8 bytes but BF16[2, 3] needs 12");
    }

    @Test
    void elementCountOverflow() throws IOException {
        assertCorrupt(entry("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]", 0), Q,
                "F32[4294967296, 4294967296] has too many elements");
        // Fits in a long as elements, overflows as bytes.
        assertCorrupt(entry("\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]", 0), Q,
                "too many elements");
    }

    @Test
    void overlappingTensors() throws IOException {
        Path file = RawFiles.withHeader(dir.resolve("overlap.safetensors"), "{"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        assertCorrupt(file, "b", "bytes [4, 12) overlap tensor 'a' at [0, 8)");
    }

    @Test
    void emptyTensorsMayShareAnOffset() throws IOException {
        Path file = RawFiles.withHeader(dir.resolve("zero.safetensors"), "{"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}    ", 8);
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThat(st.tensors()).containsOnlyKeys("a", "b");
        }
    }

    @Test
    void metadataNotAnObjectOfStrings() throws IOException {
        Path notObject = RawFiles.withHeader(dir.resolve("meta1.safetensors"), "{\"__metadata__\": [1]}", 0);
        assertCorrupt(notObject, null, "__metadata__ is not a JSON object");
        Path notString = RawFiles.withHeader(dir.resolve("meta2.safetensors"), "{\"__metadata__\": {\"n\": 1}}", 0);
        assertCorrupt(notString, null, "__metadata__ value of 'n' is not a string");
    }

    /** A file with one tensor named {@link #Q} whose header entry has the given fields. */
    private Path entry(String fields, int dataBytes) throws IOException {
        return RawFiles.withHeader(dir.resolve("model.safetensors"), "{\"" + Q + "\": {" + fields + "}}", dataBytes);
    }

    private static CheckpointException assertCorrupt(Path file, String tensor, String... problems) {
        CheckpointException e =
                catchThrowableOfType(CheckpointException.class, () -> SafetensorsFile.open(file).close());
        assertThat(e).as("opening %s should fail", file).isNotNull();
        assertThat(e.file()).isEqualTo(file);
        assertThat(e.tensorName()).isEqualTo(tensor);
        assertThat(e.getMessage()).startsWith(file.toString() + ": ");
        if (tensor != null) {
            assertThat(e.getMessage()).contains("tensor '" + tensor + "'");
        }
        for (String problem : problems) {
            assertThat(e.getMessage()).contains(problem);
        }
        return e;
    }
}
