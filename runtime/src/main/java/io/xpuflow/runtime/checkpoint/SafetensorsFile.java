package io.xpuflow.runtime.checkpoint;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.xpuflow.device.DeviceException;
import io.xpuflow.device.MappedFile;
import io.xpuflow.runtime.json.JsonFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An open safetensors file: its validated header and a native memory mapping of its bytes.
 *
 * <p>The layout is an 8-byte little-endian header length {@code N}, {@code N} bytes of UTF-8 JSON
 * mapping each tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (plus an
 * optional {@code "__metadata__"} object of strings), then the data section the offsets point into.
 * {@link #open} checks the whole header (types, shapes, ranges inside the data section and not
 * overlapping, sizes matching shapes) before returning, so every later access is in bounds.
 *
 * <p>Addresses and buffers handed out are valid until {@link #close()}; never close while native code
 * may still read them. Safe for concurrent reads.
 */
public final class SafetensorsFile implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(SafetensorsFile.class);

    /** Real headers are at most a few MiB; a larger length means a corrupt or foreign file. */
    static final long MAX_HEADER_BYTES = 100L << 20;

    private static final String METADATA_KEY = "__metadata__";

    /** Views are bounded by ByteBuffer's int indexing, so large tensors are read in pieces. */
    private static final long READ_CHUNK_BYTES = 1L << 30;

    /** Duplicate names would otherwise silently keep only the last entry. */
    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private static final Set<DType> INTEGER_TYPES = EnumSet.of(DType.I64, DType.I32, DType.I16, DType.I8, DType.U8);

    private final Path path;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;
    private final long dataStart;
    private final MappedFile mapping;

    private SafetensorsFile(
            Path path, Map<String, TensorInfo> tensors, Map<String, String> metadata, long dataStart,
            MappedFile mapping) {
        this.path = path;
        this.tensors = tensors;
        this.metadata = metadata;
        this.dataStart = dataStart;
        this.mapping = mapping;
    }

    /**
     * Reads and validates the header of {@code path}, then maps the file.
     *
     * @throws CheckpointException naming the file (and the tensor, where one is at fault) if the file
     *     cannot be read or is not a well-formed safetensors file
     */
    public static SafetensorsFile open(Path path) {
        long fileSize;
        byte[] header;
        // The header is read through a channel so that malformed files are rejected without mapping.
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            fileSize = ch.size();
            if (fileSize < 8) {
                throw new CheckpointException(path, null,
                        "file is " + fileSize + " bytes, too short for the 8-byte header length");
            }
            ByteBuffer len = readFully(ch, 0, 8).order(ByteOrder.LITTLE_ENDIAN);
            long headerLength = len.getLong(0);
            // Unsigned in the format: a negative long is a length above 2^63, absurd as well.
            if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
                throw new CheckpointException(path, null, "header length " + Long.toUnsignedString(headerLength)
                        + " exceeds the limit of " + MAX_HEADER_BYTES + " bytes (not a safetensors file?)");
            }
            if (headerLength > fileSize - 8) {
                throw new CheckpointException(path, null, "header length " + headerLength
                        + " runs past the end of the file of " + fileSize + " bytes (truncated?)");
            }
            header = readFully(ch, 8, (int) headerLength).array();
        } catch (NoSuchFileException e) {
            throw new CheckpointException(path, null, "no such file", e);
        } catch (IOException e) {
            throw new CheckpointException(path, null, "cannot read: " + e, e);
        }

        long dataStart = 8L + header.length;
        Header parsed = parseHeader(path, header, fileSize - dataStart);

        MappedFile mapping;
        try {
            mapping = MappedFile.map(path);
        } catch (DeviceException e) {
            throw new CheckpointException(path, null, "cannot map: " + e.getMessage(), e);
        }
        // Offsets were validated against the size seen through the channel; a file rewritten since
        // would make them meaningless.
        if (mapping.size() != fileSize) {
            long mapped = mapping.size();
            mapping.close();
            throw new CheckpointException(path, null,
                    "file changed while opening (" + fileSize + " bytes, then " + mapped + ")");
        }
        LOG.debug("opened {}: {} tensors, {} bytes", path, parsed.tensors.size(), fileSize);
        return new SafetensorsFile(path, parsed.tensors, parsed.metadata, dataStart, mapping);
    }

    private static ByteBuffer readFully(FileChannel ch, long position, int length) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(length);
        while (buf.hasRemaining()) {
            if (ch.read(buf, position + buf.position()) < 0) {
                throw new IOException("unexpected end of file at byte " + (position + buf.position()));
            }
        }
        return buf;
    }

    private record Header(Map<String, TensorInfo> tensors, Map<String, String> metadata) {}

    private static Header parseHeader(Path path, byte[] header, long dataSize) {
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (IOException e) {
            // by position only: a file that is not a checkpoint must not be quoted (see JsonFiles); a duplicate
            // tensor name is the exception, a header that parses that far is a safetensors header
            String why = JsonFiles.describe(e);
            if (e instanceof JacksonException j && j.getOriginalMessage() != null
                    && j.getOriginalMessage().startsWith("Duplicate field")) {
                String dup = j.getOriginalMessage();
                why += " (" + (dup.length() > 80 ? dup.substring(0, 77) + "..." : dup) + ")";
            }
            throw new CheckpointException(path, null, "header is " + why);
        }
        if (root == null || !root.isObject()) {
            String found = root == null || root.isMissingNode()
                    ? "empty"
                    : root.getNodeType().toString().toLowerCase(Locale.ROOT);
            throw new CheckpointException(path, null, "header is not a JSON object but " + found);
        }

        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = Map.of();
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            if (e.getKey().equals(METADATA_KEY)) {
                metadata = parseMetadata(path, e.getValue());
            } else {
                tensors.put(e.getKey(), parseEntry(path, e.getKey(), e.getValue(), dataSize));
            }
        }
        checkNoOverlap(path, tensors.values());
        return new Header(Collections.unmodifiableMap(tensors), metadata);
    }

    private static Map<String, String> parseMetadata(Path path, JsonNode node) {
        if (!node.isObject()) {
            throw new CheckpointException(path, null, METADATA_KEY + " is not a JSON object");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw new CheckpointException(path, null,
                        METADATA_KEY + " value of '" + e.getKey() + "' is not a string");
            }
            metadata.put(e.getKey(), e.getValue().textValue());
        }
        return Collections.unmodifiableMap(metadata);
    }

    private static TensorInfo parseEntry(Path path, String name, JsonNode entry, long dataSize) {
        if (!entry.isObject()) {
            throw new CheckpointException(path, name, "header entry is not a JSON object");
        }
        JsonNode dtypeNode = entry.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new CheckpointException(path, name, "'dtype' is " + missingOr(dtypeNode) + ", expected a string");
        }
        DType dtype;
        try {
            dtype = DType.parse(dtypeNode.textValue());
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(path, name, "unknown dtype '" + dtypeNode.textValue()
                    + "' (known: " + Arrays.toString(DType.values()) + ")");
        }
        long[] shape = longs(entry.get("shape"));
        if (shape == null) {
            throw new CheckpointException(path, name,
                    "'shape' is " + missingOr(entry.get("shape")) + ", expected an array of integers");
        }
        for (long d : shape) {
            if (d < 0) {
                throw new CheckpointException(path, name, "negative dimension in shape " + Arrays.toString(shape));
            }
        }
        long[] offsets = longs(entry.get("data_offsets"));
        if (offsets == null || offsets.length != 2) {
            throw new CheckpointException(path, name, "'data_offsets' is " + missingOr(entry.get("data_offsets"))
                    + ", expected an array of two integers [begin, end]");
        }
        long begin = offsets[0];
        long end = offsets[1];
        String range = "data_offsets " + Arrays.toString(offsets);
        if (begin < 0 || end < 0) {
            throw new CheckpointException(path, name, range + " are negative");
        }
        if (begin > end) {
            throw new CheckpointException(path, name, range + " begin after end");
        }
        if (end > dataSize) {
            throw new CheckpointException(path, name,
                    range + " end past the data section of " + dataSize + " bytes");
        }
        TensorInfo info = new TensorInfo(name, dtype, shape, begin, end);
        long expected;
        try {
            expected = Math.multiplyExact(info.numel(), dtype.byteSize());
        } catch (ArithmeticException e) {
            throw new CheckpointException(path, name, "shape " + info.describe() + " has too many elements (overflow)");
        }
        if (expected != end - begin) {
            throw new CheckpointException(path, name, range + " hold " + (end - begin) + " bytes but "
                    + info.describe() + " needs " + expected);
        }
        return info;
    }

    /** The node's integers, or null if it is not an array of integers that fit in a long. */
    private static long[] longs(JsonNode node) {
        if (node == null || !node.isArray()) {
            return null;
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong()) {
                return null;
            }
            out[i] = v.longValue();
        }
        return out;
    }

    private static String missingOr(JsonNode node) {
        if (node == null) {
            return "missing";
        }
        String s = node.toString();
        return s.length() > 40 ? s.substring(0, 37) + "..." : s;
    }

    private static void checkNoOverlap(Path path, Iterable<TensorInfo> all) {
        // Empty tensors own no bytes, so they may sit anywhere, even inside another tensor.
        List<TensorInfo> sorted = new ArrayList<>();
        for (TensorInfo t : all) {
            if (t.byteSize() > 0) {
                sorted.add(t);
            }
        }
        sorted.sort(Comparator.comparingLong(TensorInfo::begin));
        for (int i = 1; i < sorted.size(); i++) {
            TensorInfo prev = sorted.get(i - 1);
            TensorInfo cur = sorted.get(i);
            if (cur.begin() < prev.end()) {
                throw new CheckpointException(path, cur.name(), "bytes [" + cur.begin() + ", " + cur.end()
                        + ") overlap tensor '" + prev.name() + "' at [" + prev.begin() + ", " + prev.end() + ")");
            }
        }
    }

    /** The file this was opened from. */
    public Path path() {
        return path;
    }

    /** All tensors by name, in header order (unmodifiable). */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** The tensor called {@code name}, if the file has one. */
    public Optional<TensorInfo> find(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    /**
     * The tensor called {@code name}.
     *
     * @throws CheckpointException naming the file and tensor if there is none
     */
    public TensorInfo require(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new CheckpointException(path, name, "missing tensor (the file has " + tensors.size() + ")");
        }
        return t;
    }

    /** The header's {@code __metadata__} strings (unmodifiable, empty if absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * Native address of the tensor's first byte, for handing to native code; valid until {@link #close()}.
     *
     * @throws IllegalArgumentException if {@code tensor} is not one of this file's
     * @throws IllegalStateException if the file is closed
     */
    public long address(TensorInfo tensor) {
        checkOwn(tensor);
        return mapping.address(dataStart + tensor.begin(), tensor.byteSize());
    }

    /**
     * A read-only little-endian view of the tensor's bytes, without copying; valid until {@link #close()}.
     *
     * @throws CheckpointException if the tensor is over 2 GiB, more than a buffer can address
     * @throws IllegalArgumentException if {@code tensor} is not one of this file's
     * @throws IllegalStateException if the file is closed
     */
    public ByteBuffer data(TensorInfo tensor) {
        checkOwn(tensor);
        if (tensor.byteSize() > Integer.MAX_VALUE) {
            throw new CheckpointException(path, tensor.name(), tensor.byteSize()
                    + " bytes do not fit one buffer view; use address() from native code");
        }
        return view(tensor, 0, tensor.byteSize());
    }

    private ByteBuffer view(TensorInfo tensor, long offset, long length) {
        if (length == 0) {
            // A zero-length native view is not worth the special cases it has; an empty buffer is the same.
            return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN).asReadOnlyBuffer();
        }
        ByteBuffer view = mapping.slice(dataStart + tensor.begin() + offset, length);
        // MappedFile.slice can hand back a view longer than asked (JavaCPP sizes it by its pointer's
        // element size); cut it to exactly the tensor's bytes so that no read can run past them.
        view.limit((int) length);
        return view.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    private void checkOwn(TensorInfo tensor) {
        if (!tensor.equals(tensors.get(tensor.name()))) {
            throw new IllegalArgumentException("tensor " + tensor + " is not from " + path);
        }
    }

    /**
     * The tensor's values widened exactly to float (from F32, BF16, F16 or F8_E4M3).
     *
     * @throws CheckpointException naming the file and tensor if it is missing, of another type, or has
     *     more elements than a Java array holds
     */
    public float[] readFloats(String name) {
        TensorInfo t = require(name);
        DType dtype = t.dtype();
        if (!dtype.isWeightType()) {
            throw new CheckpointException(path, name,
                    dtype + " cannot be read as floats (F32, BF16, F16 or F8_E4M3 can)");
        }
        float[] out = new float[arrayLength(t)];
        int size = dtype.byteSize();
        int chunk = (int) (READ_CHUNK_BYTES / size);
        for (int from = 0; from < out.length; from += chunk) {
            int count = Math.min(chunk, out.length - from);
            ByteBuffer b = view(t, (long) from * size, (long) count * size);
            switch (dtype) {
                case F32 -> b.asFloatBuffer().get(out, from, count);
                case BF16 -> {
                    for (int i = 0; i < count; i++) {
                        out[from + i] = FloatDecoding.bf16ToFloat(b.getShort(2 * i));
                    }
                }
                case F16 -> {
                    for (int i = 0; i < count; i++) {
                        out[from + i] = FloatDecoding.f16ToFloat(b.getShort(2 * i));
                    }
                }
                case F8_E4M3 -> {
                    for (int i = 0; i < count; i++) {
                        out[from + i] = FloatDecoding.e4m3ToFloat(b.get(i));
                    }
                }
                default -> throw new AssertionError(dtype);
            }
        }
        return out;
    }

    /**
     * The tensor's values widened to long (from I64, I32, I16, I8, or U8 as unsigned).
     *
     * @throws CheckpointException naming the file and tensor if it is missing, of another type, or has
     *     more elements than a Java array holds
     */
    public long[] readLongs(String name) {
        TensorInfo t = require(name);
        DType dtype = t.dtype();
        if (!INTEGER_TYPES.contains(dtype)) {
            throw new CheckpointException(path, name,
                    dtype + " cannot be read as integers (I64, I32, I16, I8 or U8 can)");
        }
        long[] out = new long[arrayLength(t)];
        int size = dtype.byteSize();
        int chunk = (int) (READ_CHUNK_BYTES / size);
        for (int from = 0; from < out.length; from += chunk) {
            int count = Math.min(chunk, out.length - from);
            ByteBuffer b = view(t, (long) from * size, (long) count * size);
            switch (dtype) {
                case I64 -> b.asLongBuffer().get(out, from, count);
                case I32 -> {
                    for (int i = 0; i < count; i++) {
                        out[from + i] = b.getInt(4 * i);
                    }
                }
                case I16 -> {
                    for (int i = 0; i < count; i++) {
                        out[from + i] = b.getShort(2 * i);
                    }
                }
                case I8 -> {
                    for (int i = 0; i < count; i++) {
                        out[from + i] = b.get(i);
                    }
                }
                case U8 -> {
                    for (int i = 0; i < count; i++) {
                        out[from + i] = b.get(i) & 0xFF;
                    }
                }
                default -> throw new AssertionError(dtype);
            }
        }
        return out;
    }

    private int arrayLength(TensorInfo t) {
        long n = t.numel();
        // The JVM's largest array is a few elements short of Integer.MAX_VALUE.
        if (n > Integer.MAX_VALUE - 8) {
            throw new CheckpointException(path, t.name(), t.describe() + " has " + n
                    + " elements, more than a Java array holds");
        }
        return (int) n;
    }

    /** Unmaps the file; addresses and buffers handed out become invalid. Idempotent. */
    @Override
    public void close() {
        mapping.close();
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + path + ", " + tensors.size() + " tensors]";
    }
}
