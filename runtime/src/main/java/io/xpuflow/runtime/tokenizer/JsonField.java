package io.xpuflow.runtime.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import io.xpuflow.runtime.json.JsonFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One value inside a JSON file, with the path that led to it, so that every complaint about a tokenizer file
 * can say which file and which field ({@code model.merges[12]}) was wrong.
 */
record JsonField(Path file, String path, JsonNode node) {
    private static final ObjectMapper JSON = JsonMapper.builder().build();

    /** The largest tokenizer file read: released tokenizer.json files are up to about 30 MB. */
    static final int MAX_FILE_BYTES = 512 << 20;

    /**
     * Reads a whole file; a missing file, unreadable file or invalid JSON is a {@link TokenizerException} that
     * names the file and the position, never its content (see {@link JsonFiles}).
     */
    static JsonField read(Path file) {
        JsonNode root;
        try {
            // Jackson decodes UTF-8 bytes faster than a String
            root = JSON.readTree(JsonFiles.readBounded(file, MAX_FILE_BYTES));
        } catch (NoSuchFileException e) {
            throw new TokenizerException(file, "no such file", e);
        } catch (IOException e) {
            throw new TokenizerException(file, JsonFiles.describe(e));
        }
        if (root == null || !root.isObject()) {
            throw new TokenizerException(file, "must hold a JSON object");
        }
        return new JsonField(file, "", root);
    }

    /** Reads a file that may be absent: null when there is no such file. */
    static JsonField readOptional(Path file) {
        return Files.exists(file) ? read(file) : null;
    }

    TokenizerException error(String problem) {
        return new TokenizerException(file, (path.isEmpty() ? "" : "'" + path + "' ") + problem);
    }

    TokenizerException error(String problem, Throwable cause) {
        return new TokenizerException(file, (path.isEmpty() ? "" : "'" + path + "' ") + problem, cause);
    }

    /** The field {@code name} of this object; absent fields give a missing node, never null. */
    JsonField get(String name) {
        JsonNode child = node.isObject() ? node.get(name) : null;
        return new JsonField(file, path.isEmpty() ? name : path + "." + name,
                child == null ? MissingNode.getInstance() : child);
    }

    boolean isAbsent() {
        return node.isMissingNode() || node.isNull();
    }

    /** A required string. */
    String text() {
        if (!node.isTextual()) {
            throw error(isAbsent() ? "is required (a string)" : "must be a string, was " + brief());
        }
        return node.asText();
    }

    String textOr(String fallback) {
        return isAbsent() ? fallback : text();
    }

    boolean bool(boolean fallback) {
        if (isAbsent()) {
            return fallback;
        }
        if (!node.isBoolean()) {
            throw error("must be true or false, was " + brief());
        }
        return node.asBoolean();
    }

    /** A required non-negative integer that fits an int (token ids, counts). */
    int index() {
        if (!node.isIntegralNumber() || !node.canConvertToInt() || node.asInt() < 0) {
            throw error(isAbsent() ? "is required (an integer >= 0)" : "must be an integer >= 0, was " + brief());
        }
        return node.asInt();
    }

    /** The elements of a required array. */
    List<JsonField> elements() {
        if (!node.isArray()) {
            throw error(isAbsent() ? "is required (a list)" : "must be a list, was " + brief());
        }
        List<JsonField> out = new ArrayList<>(node.size());
        for (int i = 0; i < node.size(); i++) {
            out.add(new JsonField(file, path + "[" + i + "]", node.get(i)));
        }
        return out;
    }

    /** The fields of a required object, in file order. */
    List<Map.Entry<String, JsonField>> fields() {
        if (!node.isObject()) {
            throw error(isAbsent() ? "is required (an object)" : "must be an object, was " + brief());
        }
        List<Map.Entry<String, JsonField>> out = new ArrayList<>(node.size());
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            out.add(Map.entry(e.getKey(), new JsonField(file, path + "." + e.getKey(), e.getValue())));
        }
        return out;
    }

    /** The {@code type} of a component object ({@code "BPE"}, {@code "ByteLevel"}...). */
    String type() {
        if (!node.isObject()) {
            throw error("must be an object with a 'type', was " + brief());
        }
        return get("type").text();
    }

    /** The value for a message: short enough to read. */
    String brief() {
        String s = node.isMissingNode() ? "absent" : node.toString();
        return s.length() > 40 ? s.substring(0, 37) + "..." : s;
    }
}
