package io.xpuflow.runtime.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The {text, ids, decoded} cases of the fixtures' tokenizer goldens (from the Hugging Face implementation). */
final class GoldenCases {
    private GoldenCases() {}

    record Case(String tokenizer, int index, String text, int[] ids, String decoded) {
        @Override
        public String toString() {
            String shown = text.length() > 40 ? text.substring(0, 37) + "..." : text;
            return tokenizer + "#" + index + " " + shown.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t");
        }
    }

    static Path stories() {
        return Fixtures.model("stories260k");
    }

    static Path qwen3() {
        return Fixtures.root().resolve("tokenizers/qwen3");
    }

    static List<Case> stories260k() {
        return read("stories260k", stories().resolve("tokenizer-golden-ids.json"));
    }

    static List<Case> qwen3Cases() {
        return read("qwen3", qwen3().resolve("golden-ids.json"));
    }

    static List<Case> read(String name, Path file) {
        try {
            JsonNode root = new ObjectMapper().readTree(Files.readString(file));
            List<Case> out = new ArrayList<>();
            JsonNode cases = root.get("cases");
            for (int i = 0; i < cases.size(); i++) {
                JsonNode c = cases.get(i);
                int[] ids = new int[c.get("ids").size()];
                for (int k = 0; k < ids.length; k++) {
                    ids[k] = c.get("ids").get(k).asInt();
                }
                out.add(new Case(name, i, c.get("text").asText(), ids, c.get("decoded").asText()));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Every golden case of both tokenizers. */
    static java.util.stream.Stream<Case> all() {
        return java.util.stream.Stream.concat(stories260k().stream(), qwen3Cases().stream());
    }
}
