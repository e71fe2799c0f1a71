package io.xpuflow.connector.sql;

import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;

import static org.assertj.core.api.Assertions.assertThat;

/** The small real model and engine settings of the SQL tests, and the engine's own answers to compare with. */
final class SqlTestSupport {
    static final String MODEL_PATH = Fixtures.model("stories260k").toAbsolutePath().toString();

    /** One kernel thread, 16 MiB of KV, a context of 64 tokens (so a long prompt is easy to make). */
    static final EngineSpec SPEC = EngineSpec.of(MODEL_PATH).withThreads(1).withKvCacheBytes(16 << 20)
            .withMaxModelLen(64);

    /** The engine options above as model options ({@code 'k' = 'v', ...} without the braces). */
    static final String MODEL_OPTIONS = "'provider' = 'xpuflow', 'model-path' = '" + MODEL_PATH + "', 'threads' = '1',"
            + " 'kv-cache-memory' = '16mb', 'max-model-len' = '64'";

    static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Tom went to the park", "The cat sat",
            "One day, a little bird", "Tim had a big red ball", "The sun was hot and", "Sue liked to read books",
            "There was a dog named Max");

    /** More than 64 tokens: longer than the context of {@link #SPEC}. */
    static final String TOO_LONG = "Once upon a time there was a little girl named Lily who loved the park. ".repeat(4);

    /** The README's SQL example over Kafka tables. */
    static final Path EXAMPLE_SCRIPT = Path.of("..", "examples", "src", "main", "sql", "kafka-ml-predict.sql");

    /** The example's engine settings: 2 threads, 64 MiB of KV, the rest the engine's defaults. */
    static final EngineSpec EXAMPLE_SPEC = EngineSpec.of(MODEL_PATH).withThreads(2).withKvCacheBytes(64 << 20);

    private static final ObjectMapper JSON = new ObjectMapper();

    private SqlTestSupport() {}

    /** Values keyed by their {@code id}; a duplicate id fails (exactly once). */
    static Map<String, JsonNode> byId(List<ConsumerRecord<byte[], byte[]>> records) throws IOException {
        Map<String, JsonNode> byId = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : records) {
            JsonNode n = JSON.readTree(r.value());
            assertThat(byId.put(n.get("id").asText(), n)).as("duplicate of %s", n).isNull();
        }
        return byId;
    }

    /**
     * The example's two output topics, keyed by id ({@code p0}, {@code p1}, ... for {@code prompts}): each
     * completion equals the engine's own greedy 32 tokens with its usage, each story the same text and
     * its short story the engine's own sampled 8 tokens.
     */
    static void assertExampleOutputs(List<String> prompts, Map<String, JsonNode> completions,
                                     Map<String, JsonNode> stories) {
        assertThat(completions).hasSize(prompts.size());
        assertThat(stories).hasSize(prompts.size());
        SamplingParams shortSampled = SamplingParams.builder().maxTokens(8).temperature(0.8).topP(0.9).build();
        for (int i = 0; i < prompts.size(); i++) {
            String prompt = prompts.get(i);
            GenerationResult expected = reference(EXAMPLE_SPEC, prompt, SamplingParams.greedy(32));
            JsonNode c = completions.get("p" + i);
            assertThat(c.get("prompt").asText()).isEqualTo(prompt);
            assertThat(c.get("completion").asText()).isEqualTo(expected.text());
            assertThat(c.get("finish_reason").asText()).isEqualTo(expected.finishReason().wireName());
            assertThat(c.get("prompt_tokens").asInt()).isEqualTo(expected.usage().promptTokens());
            assertThat(c.get("completion_tokens").asInt()).isEqualTo(expected.usage().completionTokens());
            JsonNode s = stories.get("p" + i);
            assertThat(s.get("story").asText()).isEqualTo(expected.text());
            assertThat(s.get("short_story").asText()).isEqualTo(reference(EXAMPLE_SPEC, prompt, shortSampled).text());
        }
    }

    /** What the engine generates for {@code prompt} on its own, under the id the SQL functions use. */
    static GenerationResult reference(EngineSpec spec, String prompt, SamplingParams sampling) {
        try (EngineRegistry.Lease lease = EngineRegistry.acquire(spec.toOptions())) {
            return lease.engine().submit(GenerationRequest.ofText(RequestIds.of(prompt), prompt, sampling)).result()
                    .join();
        }
    }

    /** Every message of the cause chain. */
    static String messages(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            sb.append(t.getMessage()).append('\n');
        }
        return sb.toString();
    }
}
