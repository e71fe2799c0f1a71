package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A served model does not depend on its checkpoint files after loading: truncating or rewriting them
 * (a redeploy copying over the directory, a disk filling up) must neither kill the JVM with SIGBUS,
 * which reading weights from the file mapping did, nor change what the model computes.
 */
class ServedModelFilesTest {

    @Test
    void truncatingAndOverwritingTheCheckpointChangesNothing(@TempDir Path tmp) throws IOException {
        Path dir = tmp.resolve("stories260k");
        Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(Fixtures.model("stories260k"))) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        Path weights = dir.resolve("model.safetensors");
        long size = Files.size(weights);
        try (LlmEngine engine = LlmEngine.open(EngineOptions.builder(dir).threads(2).build())) {
            int[] before = generate(engine, "a");

            try (RandomAccessFile f = new RandomAccessFile(weights.toFile(), "rw")) {
                f.setLength(0);
            }
            int[] afterTruncation = generate(engine, "b");

            byte[] garbage = new byte[(int) size];
            Arrays.fill(garbage, (byte) 0x7f); // BF16 0x7f7f: huge values everywhere
            Files.write(weights, garbage);
            int[] afterRewrite = generate(engine, "c");

            assertThat(afterTruncation).containsExactly(before);
            assertThat(afterRewrite).containsExactly(before);
        }
    }

    private static int[] generate(LlmEngine engine, String id) {
        return engine.submit(GenerationRequest.ofText(id, "Once upon a time",
                        SamplingParams.builder().maxTokens(32).ignoreEos(true).build()))
                .result().orTimeout(60, TimeUnit.SECONDS).join().tokenIds();
    }
}
