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
import java.util.Objects;

/**
 * Builds a safetensors file and writes it: tensors in the order added, little endian, the header padded
 * with spaces so that the data section starts 8-byte aligned (as the reference writer does, letting
 * readers map F64/I64 data aligned).
 *
 * <p>Each tensor's bytes are either kept once ({@link #addFloats}, {@link #addRaw}: building costs one copy
 * per tensor) or produced while the file is written ({@link #addStreamed}: only the shape is known up
 * front, so a multi-gigabyte file needs no more heap than its producers use). Not thread-safe.
 */
public final class SafetensorsWriter {
    private static final JsonMapper JSON = new JsonMapper();

    /** Writes the bytes of one tensor when the file is written; see {@link #addStreamed}. */
    @FunctionalInterface
    public interface TensorProducer {
        /** Writes exactly the tensor's byte size to {@code out}, little endian, in row-major order. */
        void writeTo(OutputStream out) throws IOException;
    }

    /** A tensor: its bytes, or (when {@code bytes} is null) a producer of {@code byteSize} bytes. */
    private record Entry(DType dtype, long[] shape, byte[] bytes, TensorProducer producer, long byteSize) {}

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

    /**
     * Adds a tensor whose bytes {@code producer} writes when {@link #write} reaches it (producers run in
     * the order the tensors were added, on the writing thread). It must write exactly the product of
     * {@code shape} times the type's size, or {@code write} fails naming the tensor.
     */
    public SafetensorsWriter addStreamed(String name, DType dtype, TensorProducer producer, long... shape) {
        long size = Math.multiplyExact(numel(name, shape), dtype.byteSize());
        return put(name, new Entry(dtype, shape.clone(), null, Objects.requireNonNull(producer, "producer"), size));
    }

    /** The number of tensors added so far. */
    public int size() {
        return entries.size();
    }

    /** The size in bytes of the file {@link #write} would write now (length prefix, header and data). */
    public long fileSize() {
        long data = 0;
        for (Entry e : entries.values()) {
            data += e.byteSize;
        }
        return 8 + header().length + data;
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
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(path), 1 << 20)) {
            out.write(length.array());
            out.write(header);
            for (Map.Entry<String, Entry> named : entries.entrySet()) {
                Entry e = named.getValue();
                if (e.bytes != null) {
                    out.write(e.bytes);
                } else {
                    CountingStream counted = new CountingStream(out);
                    e.producer.writeTo(counted);
                    if (counted.count != e.byteSize) {
                        throw new CheckpointException(path, named.getKey(), "the producer wrote " + counted.count
                                + " bytes but " + e.dtype + Arrays.toString(e.shape) + " needs " + e.byteSize);
                    }
                }
            }
        } catch (IOException e) {
            throw new CheckpointException(path, null, "cannot write: " + e, e);
        }
    }

    /** Counts what a producer writes; closing it leaves the file open. */
    private static final class CountingStream extends OutputStream {
        private final OutputStream out;
        long count;

        CountingStream(OutputStream out) {
            this.out = out;
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            count += len;
        }

        @Override
        public void close() {
            // the file belongs to write()
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
            long end = offset + e.getValue().byteSize;
            t.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json = root.toString().getBytes(StandardCharsets.UTF_8);
        byte[] padded = Arrays.copyOf(json, (json.length + 7) & ~7);
        Arrays.fill(padded, json.length, padded.length, (byte) ' ');
        return padded;
    }

    private SafetensorsWriter put(String name, DType dtype, long[] shape, byte[] bytes) {
        return put(name, new Entry(dtype, shape.clone(), bytes, null, bytes.length));
    }

    private SafetensorsWriter put(String name, Entry entry) {
        if (name.equals("__metadata__")) {
            throw new IllegalArgumentException("'__metadata__' is reserved and cannot name a tensor");
        }
        if (entries.putIfAbsent(name, entry) != null) {
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
