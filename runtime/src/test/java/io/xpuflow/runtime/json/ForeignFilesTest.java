package io.xpuflow.runtime.json;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.checkpoint.Checkpoint;
import io.xpuflow.runtime.checkpoint.CheckpointException;
import io.xpuflow.runtime.config.ModelConfigException;
import io.xpuflow.runtime.config.ModelConfigs;
import io.xpuflow.runtime.tokenizer.ChatTemplate;
import io.xpuflow.runtime.tokenizer.ChatTemplateException;
import io.xpuflow.runtime.tokenizer.Tokenizer;
import io.xpuflow.runtime.tokenizer.TokenizerException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A model directory whose JSON files are links to files that are not the model's (here a stand-in for
 * {@code /etc/passwd} holding a secret): the errors name the file and the position, and quote nothing of it —
 * not in the message and not in a cause (a stack trace in a log would print it).
 */
class ForeignFilesTest {
    // one token to Jackson (no separators), so that a message quoting the token would quote all of it
    private static final String SECRET = "SECRETMARKER7f3a";

    @TempDir
    Path tmp;

    /** Contents that fail at different points of the parse, each with the secret where Jackson would quote it. */
    @ParameterizedTest
    @ValueSource(strings = {
        SECRET + ":x:0:0:root:/root:/bin/bash\n",
        "root:x:0:0:" + SECRET + ":/root:/bin/bash\n",
        "{\"a\": " + SECRET + "}",
        "{\"a\": 1, " + SECRET + "}",
        "[\"" + SECRET + "\", tru]",
        "{\"" + SECRET + "\": \"unterminated",
        "\"" + SECRET + "\"",
    })
    void configJsonLinkedToAnotherFile(String content) throws IOException {
        Path dir = linkedTo("config.json", content);
        assertQuotesNothing(() -> ModelConfigs.read(dir), ModelConfigException.class, dir.resolve("config.json"));
    }

    @Test
    void theParseErrorSaysWhere() throws IOException {
        Path dir = linkedTo("config.json", "{\n  \"a\": 1,\n  x" + SECRET + "\n}");
        assertThatThrownBy(() -> ModelConfigs.read(dir)).isInstanceOf(ModelConfigException.class)
                .hasMessageContaining("not valid JSON at line 3, column");
        Path eof = linkedTo("config.json", "{\"a\": [1, 2");
        assertThatThrownBy(() -> ModelConfigs.read(eof)).hasMessageContaining("not valid JSON: unexpected end at line 1");
    }

    @Test
    void notUtf8() throws IOException {
        Path dir = Files.createTempDirectory(tmp, "m");
        Files.write(dir.resolve("config.json"), new byte[] {'{', '"', (byte) 0xC3, (byte) 0x28, '"', ':', '1', '}'});
        assertThatThrownBy(() -> ModelConfigs.read(dir)).isInstanceOf(ModelConfigException.class)
                .hasMessageContainingAll("config.json", "invalid UTF-8");
    }

    @Test
    void endlessOrHugeFilesAreRefusedWithoutReadingThemWhole() throws IOException {
        Path dir = Files.createTempDirectory(tmp, "m");
        Path zero = Path.of("/dev/zero");
        if (Files.isReadable(zero)) {
            Files.createSymbolicLink(dir.resolve("config.json"), zero);
            assertThatThrownBy(() -> ModelConfigs.read(dir)).isInstanceOf(ModelConfigException.class)
                    .hasMessageContaining("larger than");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tokenizer.json", "tokenizer_config.json"})
    void tokenizerFilesLinkedToAnotherFile(String name) throws IOException {
        Path dir = linkedTo(name, SECRET + ":x:0:0:root:/root:/bin/bash\n");
        if (name.equals("tokenizer_config.json")) {
            Files.copy(io.xpuflow.runtime.testutil.Fixtures.model("stories260k").resolve("tokenizer.json"),
                    dir.resolve("tokenizer.json"));
        }
        assertQuotesNothing(() -> Tokenizer.load(dir), TokenizerException.class, dir.resolve(name));
        if (name.equals("tokenizer_config.json")) {
            assertQuotesNothing(() -> ChatTemplate.load(dir), TokenizerException.class, dir.resolve(name));
        }
    }

    @Test
    void chatTemplateJinjaLinkedToAHugeFile() throws IOException {
        Path dir = Files.createTempDirectory(tmp, "m");
        Path huge = Files.createTempFile(tmp, "huge", "");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(huge.toFile(), "rw")) {
            f.setLength(64L << 20); // sparse: costs no disk
        }
        Files.createSymbolicLink(dir.resolve("chat_template.jinja"), huge);
        assertThatThrownBy(() -> ChatTemplate.load(dir)).isInstanceOf(ChatTemplateException.class)
                .hasMessageContainingAll("chat_template.jinja", "larger than");
    }

    @Test
    void shardIndexLinkedToAnotherFile() throws IOException {
        Path dir = linkedTo(Checkpoint.INDEX_FILE, SECRET + ":x:0:0:root:/root:/bin/bash\n");
        assertQuotesNothing(() -> Checkpoint.open(dir), CheckpointException.class, dir.resolve(Checkpoint.INDEX_FILE));
    }

    @Test
    void safetensorsHeaderThatIsNotJson() throws IOException {
        Path dir = Files.createTempDirectory(tmp, "m");
        byte[] header = ("{\"w\": " + SECRET + "}").getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header);
        Files.write(dir.resolve("model.safetensors"), b.array());
        assertQuotesNothing(() -> Checkpoint.open(dir), CheckpointException.class, dir.resolve("model.safetensors"));
    }

    private Path linkedTo(String name, String content) throws IOException {
        Path secret = Files.createTempFile(tmp, "passwd", "");
        Files.writeString(secret, content);
        Path dir = Files.createTempDirectory(tmp, "model");
        Files.createSymbolicLink(dir.resolve(name), secret);
        return dir;
    }

    private static void assertQuotesNothing(ThrowingCallable call, Class<? extends Throwable> type, Path file) {
        assertThatThrownBy(call).isInstanceOf(type).hasMessageContaining(file.toString())
                .satisfies(e -> {
                    for (Throwable t = e; t != null; t = t.getCause()) {
                        assertThat(t.getMessage()).as("message of %s", t).doesNotContain(SECRET, "'root'", "root:x", "bin/bash");
                    }
                });
    }
}
