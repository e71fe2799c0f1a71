package io.xpuflow.runtime.config;

import com.fasterxml.jackson.databind.JsonNode;

/** Reading rotary-embedding settings shared by the adapters. */
final class Rotary {
    private Rotary() {}

    /**
     * Rotated dims per head: {@code int(headDim * partialRotaryFactor)} as the reference
     * implementations compute it, rounded down to even (RoPE rotates pairs).
     */
    static int dim(ConfigReader c, int headDim, double partialRotaryFactor) {
        if (partialRotaryFactor > 1.0) {
            throw c.error("partial_rotary_factor", "must be in (0, 1], was " + partialRotaryFactor);
        }
        int dim = (int) (headDim * partialRotaryFactor);
        return dim - (dim % 2);
    }

    static RopeConfig.Scaling scaling(ConfigReader c) {
        JsonNode s = c.node("rope_scaling");
        if (s == null) {
            return new RopeConfig.None();
        }
        if (!s.isObject()) {
            throw c.error("rope_scaling", "must be an object or null, was " + ConfigReader.brief(s));
        }
        String type = s.has("rope_type") ? s.get("rope_type").asText() : s.path("type").asText("default");
        return switch (type) {
            case "default" -> new RopeConfig.None();
            case "linear" -> new RopeConfig.Linear(positive(c, s, "factor"));
            case "llama3" -> new RopeConfig.Llama3(positive(c, s, "factor"), positive(c, s, "low_freq_factor"),
                    positive(c, s, "high_freq_factor"), (int) positive(c, s, "original_max_position_embeddings"));
            default -> throw c.error("rope_scaling", "type '" + type + "' is not supported (supported: default, linear, llama3)");
        };
    }

    private static double positive(ConfigReader c, JsonNode s, String field) {
        JsonNode n = s.get(field);
        if (n == null || !n.isNumber() || !(n.asDouble() > 0) || Double.isInfinite(n.asDouble())) {
            throw c.error("rope_scaling." + field, "must be a positive number, was " + n);
        }
        return n.asDouble();
    }
}
