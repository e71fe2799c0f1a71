package io.xpuflow.runtime.config;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.xpuflow.runtime.json.JsonFiles;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Typed, checked access to the fields of a {@code config.json}. Every failure is a
 * {@link ModelConfigException} that names the file and the field and says what was wrong.
 */
public final class ConfigReader {
    // Python's json module writes NaN and Infinity; read them so the message can name the field
    private static final ObjectMapper JSON =
            JsonMapper.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();

    private final Path file;
    private final JsonNode root;

    private ConfigReader(Path file, JsonNode root) {
        this.file = file;
        this.root = root;
    }

    /** Released configs are a few KiB; anything near this is not a config.json. */
    static final int MAX_CONFIG_BYTES = 16 << 20;
    /** How much of a value a message quotes: enough to recognise it, too little to leak a file. */
    private static final int MAX_QUOTED_CHARS = 40;

    /**
     * Reads and parses {@code file}. A file that is not JSON is reported by position only (see {@link JsonFiles}):
     * config.json may be a link to a file that is not the model's.
     */
    public static ConfigReader read(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(JsonFiles.readBounded(file, MAX_CONFIG_BYTES));
        } catch (NoSuchFileException e) {
            throw new ModelConfigException(file, "no such file: a model directory needs a config.json");
        } catch (IOException e) {
            throw new ModelConfigException(file, JsonFiles.describe(e));
        }
        if (root == null || !root.isObject()) {
            throw new ModelConfigException(file, "must hold a JSON object");
        }
        return new ConfigReader(file, root);
    }

    public Path file() {
        return file;
    }

    public boolean has(String field) {
        JsonNode n = root.get(field);
        return n != null && !n.isNull();
    }

    public ModelConfigException error(String field, String problem) {
        return new ModelConfigException(file, "'" + field + "' " + problem);
    }

    public String string(String field, String fallback) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) {
            return fallback;
        }
        if (!n.isTextual()) {
            throw error(field, "must be a string, was " + brief(n));
        }
        return n.asText();
    }

    /** The first entry of {@code architectures}, or null. */
    public String architecture() {
        JsonNode n = root.get("architectures");
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isArray() || n.isEmpty() || !n.get(0).isTextual()) {
            throw error("architectures", "must be a non-empty list of names, was " + brief(n));
        }
        return n.get(0).asText();
    }

    public int requireInt(String field) {
        if (!has(field)) {
            throw error(field, "is required");
        }
        return intValue(field, root.get(field));
    }

    public int integer(String field, int fallback) {
        return has(field) ? intValue(field, root.get(field)) : fallback;
    }

    /** The first of {@code fields} that is present, else {@code fallback}. */
    public int integerOf(int fallback, String... fields) {
        for (String f : fields) {
            if (has(f)) {
                return intValue(f, root.get(f));
            }
        }
        return fallback;
    }

    public int requirePositive(String field) {
        int v = requireInt(field);
        if (v <= 0) {
            throw error(field, "must be positive, was " + v);
        }
        return v;
    }

    /** A positive count no larger than {@code max}: guards per-item allocations against absurd values. */
    public int requireCount(String field, int max) {
        int v = requirePositive(field);
        if (v > max) {
            throw error(field, v + " is beyond the supported maximum of " + max);
        }
        return v;
    }

    public int positive(String field, int fallback) {
        int v = integer(field, fallback);
        if (v <= 0) {
            throw error(field, "must be positive, was " + v);
        }
        return v;
    }

    public double number(String field, double fallback) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) {
            return fallback;
        }
        if (!n.isNumber()) {
            throw error(field, "must be a number, was " + brief(n));
        }
        return n.asDouble();
    }

    /** A finite number greater than zero. */
    public double positiveNumber(String field, double fallback) {
        double v = number(field, fallback);
        if (!(v > 0) || Double.isInfinite(v)) {
            throw error(field, "must be a positive finite number, was " + v);
        }
        return v;
    }

    public boolean bool(String field, boolean fallback) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) {
            return fallback;
        }
        if (!n.isBoolean()) {
            throw error(field, "must be true or false, was " + brief(n));
        }
        return n.asBoolean();
    }

    /** An integer list field, or null when absent. */
    public List<Integer> intList(String field) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isArray()) {
            throw error(field, "must be a list of integers, was " + brief(n));
        }
        List<Integer> out = new ArrayList<>(n.size());
        for (JsonNode e : n) {
            out.add(intValue(field, e));
        }
        return out;
    }

    /** {@code eos_token_id} as a list: a single id or a list of ids. */
    public List<Integer> idList(String field) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) {
            return List.of();
        }
        if (n.isArray()) {
            return intList(field);
        }
        return List.of(intValue(field, n));
    }

    public JsonNode node(String field) {
        JsonNode n = root.get(field);
        return n == null || n.isNull() ? null : n;
    }

    /** A value for a message, cut to {@value #MAX_QUOTED_CHARS} characters. */
    public static String brief(JsonNode n) {
        return cut(String.valueOf(n));
    }

    /** A string value for a message, quoted and cut to {@value #MAX_QUOTED_CHARS} characters. */
    public static String quote(String s) {
        return "'" + cut(s) + "'";
    }

    private static String cut(String s) {
        return s.length() > MAX_QUOTED_CHARS ? s.substring(0, MAX_QUOTED_CHARS - 3) + "..." : s;
    }

    private int intValue(String field, JsonNode n) {
        if (n.isIntegralNumber() && n.canConvertToInt()) {
            return n.asInt();
        }
        if (n.isFloatingPointNumber() && n.asDouble() == Math.rint(n.asDouble()) && Math.abs(n.asDouble()) < Integer.MAX_VALUE) {
            return (int) n.asDouble();
        }
        throw error(field, "must be an integer, was " + brief(n));
    }
}
