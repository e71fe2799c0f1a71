package io.xpuflow.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.xpuflow.runtime.json.JsonFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The weights of a model directory in Hugging Face layout: either shards listed by
 * {@code model.safetensors.index.json} or a single {@code model.safetensors}. Other
 * {@code *.safetensors} files in the directory are not weights and are ignored.
 *
 * <p>Opening validates every shard and that the index agrees with them, so a tensor obtained here is
 * always readable. Closing unmaps all shards; {@link TensorRef}s become invalid.
 */
public final class Checkpoint implements AutoCloseable {
    /** The sharded layout's index file name. */
    public static final String INDEX_FILE = "model.safetensors.index.json";
    /** The single-file layout's weights file name. */
    public static final String SINGLE_FILE = "model.safetensors";

    private static final JsonMapper JSON = new JsonMapper();

    private final Path dir;
    /** The index or the single file: what a missing tensor is reported against. */
    private final Path source;
    private final Map<String, TensorRef> tensors;
    private final List<SafetensorsFile> shards;

    private Checkpoint(Path dir, Path source, Map<String, TensorRef> tensors, List<SafetensorsFile> shards) {
        this.dir = dir;
        this.source = source;
        this.tensors = tensors;
        this.shards = shards;
    }

    /**
     * Opens the weights in {@code dir}: the shards of {@code model.safetensors.index.json} if it exists,
     * else {@code model.safetensors}.
     *
     * @throws CheckpointException naming the directory, index, shard and tensor concerned if there are
     *     no weights, the index is malformed or disagrees with its shards, or a shard is malformed
     */
    public static Checkpoint open(Path dir) {
        Path index = dir.resolve(INDEX_FILE);
        if (Files.exists(index)) {
            return openSharded(dir, index);
        }
        Path single = dir.resolve(SINGLE_FILE);
        if (Files.exists(single)) {
            SafetensorsFile file = SafetensorsFile.open(single);
            Map<String, TensorRef> refs = new LinkedHashMap<>();
            for (TensorInfo t : file.tensors().values()) {
                refs.put(t.name(), new TensorRef(t.name(), t, file));
            }
            return new Checkpoint(dir, single, Collections.unmodifiableMap(refs), List.of(file));
        }
        throw new CheckpointException(dir, null, Files.isDirectory(dir)
                ? "no weights: expected " + INDEX_FILE + " or " + SINGLE_FILE
                : "not a directory (expected one holding " + INDEX_FILE + " or " + SINGLE_FILE + ")");
    }

    private static Checkpoint openSharded(Path dir, Path index) {
        Map<String, String> weightMap = readWeightMap(index);

        // First tensor per shard, in index order, so that a missing shard can be reported with a tensor.
        Map<String, String> shardNames = new LinkedHashMap<>();
        weightMap.forEach((tensor, shard) -> shardNames.putIfAbsent(shard, tensor));
        shardNames.forEach((shard, tensor) -> {
            if (!Files.isRegularFile(dir.resolve(shard))) {
                throw new CheckpointException(index, tensor, "shard '" + shard + "' does not exist in " + dir);
            }
        });

        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        try {
            for (String shard : shardNames.keySet()) {
                shards.put(shard, SafetensorsFile.open(dir.resolve(shard)));
            }
            Map<String, TensorRef> refs = new LinkedHashMap<>();
            weightMap.forEach((tensor, shard) -> {
                SafetensorsFile file = shards.get(shard);
                TensorInfo info = file.find(tensor).orElseThrow(() -> new CheckpointException(index, tensor,
                        "the weight_map puts it in shard '" + shard + "', which does not contain it"));
                refs.put(tensor, new TensorRef(tensor, info, file));
            });
            return new Checkpoint(dir, index, Collections.unmodifiableMap(refs), List.copyOf(shards.values()));
        } catch (RuntimeException e) {
            throw closeAll(shards.values(), e);
        }
    }

    /** Shard indexes of the largest released models are a few MB. */
    private static final int MAX_INDEX_BYTES = 256 << 20;

    private static Map<String, String> readWeightMap(Path index) {
        JsonNode root;
        try {
            root = JSON.readTree(JsonFiles.readBounded(index, MAX_INDEX_BYTES));
        } catch (IOException e) {
            throw new CheckpointException(index, null, JsonFiles.describe(e));
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new CheckpointException(index, null, "no 'weight_map' object");
        }
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            String shard = e.getValue().isTextual() ? e.getValue().textValue() : "";
            // Shards must sit in the directory itself; a path would let an index point anywhere.
            if (shard.isEmpty() || shard.contains("/") || shard.contains("\\") || shard.equals("..")) {
                throw new CheckpointException(index, e.getKey(),
                        "weight_map entry " + e.getValue() + " is not a shard file name");
            }
            weightMap.put(e.getKey(), shard);
        }
        return weightMap;
    }

    /**
     * Closes every file even if some fail, so that one bad unmap does not leak the others' mappings.
     *
     * @return {@code failure} or, if null, the first close failure, with later ones suppressed; null if
     *     there was neither
     */
    private static RuntimeException closeAll(Iterable<SafetensorsFile> files, RuntimeException failure) {
        for (SafetensorsFile f : files) {
            try {
                f.close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        return failure;
    }

    /** The model directory. */
    public Path dir() {
        return dir;
    }

    /** All tensor names, in index (or file) order (unmodifiable). */
    public Set<String> names() {
        return tensors.keySet();
    }

    /** The tensor called {@code name}, if the checkpoint has one. */
    public Optional<TensorRef> find(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    /**
     * The tensor called {@code name}.
     *
     * @throws CheckpointException naming the index (or single file) and the tensor if there is none
     */
    public TensorRef require(String name) {
        TensorRef ref = tensors.get(name);
        if (ref == null) {
            throw new CheckpointException(source, name,
                    "missing tensor (the checkpoint has " + tensors.size() + ")");
        }
        return ref;
    }

    /** Unmaps all shards; tensor addresses and buffers become invalid. Idempotent. */
    @Override
    public void close() {
        RuntimeException failure = closeAll(shards, null);
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public String toString() {
        return "Checkpoint[" + source + ", " + tensors.size() + " tensors]";
    }
}
