package io.xpuflow.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Damaged and unsupported tokenizer files fail at load, naming the file and the field. */
class TokenizerFilesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** A copy of stories260k's tokenizer files with tokenizer.json edited. */
    private Path storiesWith(Consumer<ObjectNode> edit) throws IOException {
        ObjectNode json = (ObjectNode) JSON.readTree(GoldenCases.stories().resolve("tokenizer.json").toFile());
        edit.accept(json);
        Files.writeString(dir.resolve("tokenizer.json"), JSON.writeValueAsString(json));
        Files.copy(GoldenCases.stories().resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        return dir;
    }

    private Path tokenizerJson() {
        return dir.resolve("tokenizer.json");
    }

    @Test
    void aCopyOfTheFixtureLoads() throws IOException {
        Tokenizer t = Tokenizer.load(storiesWith(j -> {}));
        assertThat(t.encode("Hello world", true)).containsExactly(1, 346, 306, 414, 263, 304, 341);
    }

    @Test
    void missingTokenizerJson() {
        assertThatThrownBy(() -> Tokenizer.load(dir)).isInstanceOf(TokenizerException.class)
                .hasMessageContaining(tokenizerJson().toString()).hasMessageContaining("no such file");
    }

    @Test
    void truncatedJson() throws IOException {
        String whole = Files.readString(GoldenCases.stories().resolve("tokenizer.json"));
        Files.writeString(tokenizerJson(), whole.substring(0, whole.length() / 2));
        assertThatThrownBy(() -> Tokenizer.load(dir)).isInstanceOf(TokenizerException.class)
                .hasMessageStartingWith(tokenizerJson() + ": not valid JSON")
                .satisfies(e -> assertThat(((TokenizerException) e).file()).isEqualTo(tokenizerJson()));
    }

    @Test
    void notAnObject() throws IOException {
        Files.writeString(tokenizerJson(), "[1, 2]");
        assertThatThrownBy(() -> Tokenizer.load(dir)).hasMessage(tokenizerJson() + ": must hold a JSON object");
    }

    @Test
    void missingModel() throws IOException {
        storiesWith(j -> j.remove("model"));
        assertThatThrownBy(() -> Tokenizer.load(dir)).isInstanceOf(TokenizerException.class)
                .hasMessageContaining(tokenizerJson().toString()).hasMessageContaining("'model'");
    }

    @Test
    void unsupportedComponentTypesAreNamed() throws IOException {
        storiesWith(j -> ((ObjectNode) j.get("normalizer")).put("type", "Precompiled"));
        assertThatThrownBy(() -> Tokenizer.load(dir)).isInstanceOf(TokenizerException.class)
                .hasMessageContaining("'normalizer.type'").hasMessageContaining("'Precompiled' is not supported");

        storiesWith(j -> j.set("pre_tokenizer", JSON.createObjectNode().put("type", "Sequence").set("pretokenizers",
                JSON.createArrayNode().add(JSON.createObjectNode().put("type", "ByteLevel"))
                        .add(JSON.createObjectNode().put("type", "BertPreTokenizer")))));
        assertThatThrownBy(() -> Tokenizer.load(dir)).hasMessageContaining("'pre_tokenizer.pretokenizers[1].type'")
                .hasMessageContaining("BertPreTokenizer");

        storiesWith(j -> ((ObjectNode) j.get("model")).put("type", "Unigram"));
        assertThatThrownBy(() -> Tokenizer.load(dir)).hasMessageContaining("'model.type'")
                .hasMessageContaining("'Unigram' is not supported");

        storiesWith(j -> ((ObjectNode) j.get("decoder").get("decoders").get(0)).put("type", "CTC"));
        assertThatThrownBy(() -> Tokenizer.load(dir)).hasMessageContaining("'decoder.decoders[0].type'")
                .hasMessageContaining("CTC");
    }

    @Test
    void aMergeOfUnknownTokens() throws IOException {
        storiesWith(j -> ((ArrayNode) j.get("model").get("merges")).insertArray(0).add("▁t").add("zzz"));
        assertThatThrownBy(() -> Tokenizer.load(dir)).isInstanceOf(TokenizerException.class)
                .hasMessageContaining(tokenizerJson().toString()).hasMessageContaining("'model.merges[0]'")
                .hasMessageContaining("'zzz' is not in model.vocab");
    }

    @Test
    void aBadTokenId() throws IOException {
        storiesWith(j -> ((ObjectNode) j.get("model").get("vocab")).put("<unk>", "zero"));
        assertThatThrownBy(() -> Tokenizer.load(dir)).hasMessageContaining("'model.vocab.<unk>'")
                .hasMessageContaining("integer >= 0");
        storiesWith(j -> ((ObjectNode) j.get("added_tokens").get(1)).put("id", -1));
        assertThatThrownBy(() -> Tokenizer.load(dir)).hasMessageContaining("'added_tokens[1].id'");
    }

    @Test
    void aRegexJavaCannotCompile() throws IOException {
        storiesWith(j -> j.set("pre_tokenizer", JSON.createObjectNode().put("type", "Split").put("behavior", "Isolated")
                .put("invert", false).set("pattern", JSON.createObjectNode().put("Regex", "(unclosed"))));
        assertThatThrownBy(() -> Tokenizer.load(dir)).hasMessageContaining("'pre_tokenizer.pattern.Regex'");
    }

    @Test
    void aTemplateNamingAnUnknownSpecialToken() throws IOException {
        storiesWith(j -> ((ObjectNode) j.get("post_processor").get("single").get(0).get("SpecialToken"))
                .put("id", "<bos>"));
        assertThatThrownBy(() -> Tokenizer.load(dir))
                .hasMessageContaining("'post_processor.single[0].SpecialToken.id' names '<bos>'");
    }

    @Test
    void aBosTokenMissingFromTheVocabulary() throws IOException {
        storiesWith(j -> {});
        Path config = dir.resolve("tokenizer_config.json");
        Files.writeString(config, "{\"bos_token\": \"<bos>\", \"add_bos_token\": true}");
        assertThatThrownBy(() -> Tokenizer.load(dir)).isInstanceOf(TokenizerException.class)
                .hasMessageContaining(config.toString()).hasMessageContaining("'bos_token' is '<bos>'");
        Files.writeString(config, "{\"bos_token\": null, \"add_bos_token\": true}");
        assertThatThrownBy(() -> Tokenizer.load(dir)).hasMessageContaining("'add_bos_token' is true but no bos_token");
        Files.writeString(config, "{\"add_bos_token\": \"yes\"}");
        assertThatThrownBy(() -> Tokenizer.load(dir)).hasMessageContaining("'add_bos_token' must be true or false");
    }

    @Test
    void addBosTokenFalseOverridesTheTemplate() throws IOException {
        storiesWith(j -> {});
        Files.writeString(dir.resolve("tokenizer_config.json"),
                "{\"bos_token\": {\"content\": \"<s>\", \"special\": true}, \"add_bos_token\": false}");
        Tokenizer t = Tokenizer.load(dir);
        assertThat(t.bosId()).isEqualTo(1);
        assertThat(t.encode("Hello", true)).doesNotContain(1);
    }

    @Test
    void withoutTokenizerConfigThePostProcessorDecides() throws IOException {
        storiesWith(j -> {});
        Files.delete(dir.resolve("tokenizer_config.json"));
        Tokenizer t = Tokenizer.load(dir);
        assertThat(t.encode("Hello", true)[0]).isEqualTo(1);
        assertThat(t.bosId()).isNull();
        assertThat(t.eosIds()).isEmpty();
    }

    @Test
    void generationConfigEosIdsAreAdded() throws IOException {
        storiesWith(j -> {});
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": [2, 0]}");
        assertThat(Tokenizer.load(dir).eosIds()).containsExactly(2, 0);
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": \"2\"}");
        assertThatThrownBy(() -> Tokenizer.load(dir)).hasMessageContaining("generation_config.json")
                .hasMessageContaining("'eos_token_id'");
    }
}
