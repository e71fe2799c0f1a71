package io.xpuflow.runtime.checkpoint;

import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Builds a safetensors file in memory and writes it: tensors in the order added, little endian, the
 * header padded with spaces so that the data section starts 8-byte aligned (as the reference writer
 * does, letting readers map F64/I64 data aligned).
 *
 * <p>Each tensor's bytes are kept once and streamed out by {@link #write}, so building costs one copy
 * per tensor. Not thread-safe.
 */
public final class SafetensorsWriter {
    private static final JsonMapper JSON = new JsonMapper();

    private record Entry(DType dtype, long[] shape, byte[] bytes) {}

    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** Adds an F32 tensor; {@code data.length} must equal the product of {@code shape} (empty: a scalar). */
    public SafetensorsWriter addFloats(String name, float[] data, long... shape) {
        checkCount(name, data.length, shape);
        ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(data.length, 4)).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(data);
        return put(name, DType.F32, shape, b.array());
    }

    /** Adds an I64 tensor; {@code data.length} must equal the product of {@code shape} (empty: a scalar). */
    public SafetensorsWriter addLongs(String name, long[] data, long... shape) {
        checkCount(name, data.length, shape);
        ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(data.length, 8)).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(data);
        return put(name, DType.I64, shape, b.array());
    }

    /**
     * Adds a tensor of any type from its little-endian bytes (kept, not copied), whose length must be
     * the product of {@code shape} times the type's size.
     */
    public SafetensorsWriter addRaw(String name, DType dtype, byte[] bytes, long... shape) {
        long expected = Math.multiplyExact(numel(name, shape), dtype.byteSize());
        if (bytes.length != expected) {
            throw new IllegalArgumentException("tensor '" + name + "': " + bytes.length + " bytes given but "
                    + dtype + Arrays.toString(shape) + " needs " + expected);
        }
        return put(name, dtype, shape, bytes);
    }

    /** Sets a {@code __metadata__} entry. */
    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /**
     * Writes the file, replacing any existing one.
     *
     * @throws CheckpointException naming the file if it cannot be written
     */
    public void write(Path path) {
        byte[] header = header();
        ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(path))) {
            out.write(length.array());
            out.write(header);
            for (Entry e : entries.values()) {
                out.write(e.bytes);
            }
        } catch (IOException e) {
            throw new CheckpointException(path, null, "cannot write: " + e, e);
        }
    }

    private byte[] header() {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, Entry> e : entries.entrySet()) {
            ObjectNode t = root.putObject(e.getKey());
            t.put("dtype", e.getValue().dtype.name());
            ArrayNode shape = t.putArray("shape");
            for (long d : e.getValue().shape) {
                shape.add(d);
            }
            long end = offset + e.getValue().bytes.length;
            t.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json = root.toString().getBytes(StandardCharsets.UTF_8);
        byte[] padded = Arrays.copyOf(json, (json.length + 7) & ~7);
        Arrays.fill(padded, json.length, padded.length, (byte) ' ');
        return padded;
    }

    private SafetensorsWriter put(String name, DType dtype, long[] shape, byte[] bytes) {
        if (name.equals("__metadata__")) {
            throw new IllegalArgumentException("'__metadata__' is reserved and cannot name a tensor");
        }
        if (entries.putIfAbsent(name, new Entry(dtype, shape.clone(), bytes)) != null) {
            throw new IllegalArgumentException("tensor '" + name + "' added twice");
        }
        return this;
    }

    private static void checkCount(String name, int length, long[] shape) {
        long numel = numel(name, shape);
        if (numel != length) {
            throw new IllegalArgumentException("tensor '" + name + "': " + length + " values given but shape "
                    + Arrays.toString(shape) + " holds " + numel);
        }
    }

    private static long numel(String name, long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("tensor '" + name + "': negative dimension in shape "
                        + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}
