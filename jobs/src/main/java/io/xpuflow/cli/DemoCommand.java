package io.xpuflow.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.connector.kafka.EmbeddedKafka;
import io.xpuflow.connector.kafka.KafkaInferencePipeline;
import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.jobs.LocalPipelineRun;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.sample.SamplingParams;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code xpuflow demo}: the whole path on one machine. An embedded Kafka broker, a local Flink job
 * (Kafka source → LLM async operator on the bundled stories260k model → exactly-once Kafka sink) and
 * a handful of prompts; completions are printed as they are committed, then everything shuts down.
 */
@Command(name = "demo", description = "Embedded Kafka + a local Flink job on the bundled model: prompts in, completions printed as they arrive.")
final class DemoCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> PROMPTS = List.of(
            "Once upon a time, there was a little dog named",
            "Lily and Ben went to the park. They saw",
            "The sun was shining and the birds were",
            "Tom had a red ball. One day,",
            "A little girl found a box in the garden. Inside the box",
            "The cat wanted to play with the fish, but");

    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Mixin
    FormatOptions formats = new FormatOptions();

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = {"-m", "--model"}, paramLabel = "DIR", description = "Checkpoint directory (default: the bundled models/stories260k).")
    Path model;

    @Option(names = "--max-tokens", defaultValue = "48", paramLabel = "N", description = "Tokens per completion (default ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0.8", paramLabel = "T", description = "Sampling temperature (default ${DEFAULT-VALUE}).")
    double temperature;

    @Override
    public Integer call() throws Exception {
        Path dir = model != null ? model : bundledModel();
        PrintWriter out = spec.commandLine().getOut();
        out.println("Starting an embedded Kafka broker ...");
        out.flush();
        try (EmbeddedKafka kafka = EmbeddedBroker.start(common.verbose == CliLogging.Verbosity.ALL)) {
            kafka.createTopic("prompts", 1);
            kafka.createTopic("completions", 1);
            kafka.createTopic("prompt-errors", 1);
            List<Map.Entry<String, String>> records = new ArrayList<>();
            for (int i = 0; i < PROMPTS.size(); i++) {
                String id = "story-" + (i + 1);
                records.add(Map.entry(id, JSON.writeValueAsString(Map.of("id", id, "prompt", PROMPTS.get(i)))));
                out.printf("> %s: %s%n", id, PROMPTS.get(i));
            }
            records.add(Map.entry("broken", "{\"id\": \"broken\", \"prompt\": "));
            out.println("> broken: {\"id\": \"broken\", \"prompt\":   (malformed JSON, goes to the dead-letter topic)");
            kafka.produceStrings("prompts", records);
            out.printf("Produced %d records to topic 'prompts'; running the Flink job on %s ...%n", records.size(), dir);
            out.flush();

            KafkaInferencePipeline pipeline = KafkaInferencePipeline.builder().bootstrapServers(kafka.bootstrapServers())
                    .inputTopic("prompts").outputTopic("completions").deadLetterTopic("prompt-errors")
                    .consumerGroup("xpuflow-demo").bounded(true)
                    .engine(formats.applyTo(EngineSpec.of(dir.toString()).withThreads(common.threads)
                            .withKvCacheBytes(64L << 20)))
                    .samplingDefaults(SamplingDefaults.of(SamplingParams.builder().maxTokens(maxTokens)
                            .temperature(temperature).build()))
                    .build();
            int seen = LocalPipelineRun.run(kafka, pipeline, 1, Duration.ofMillis(300), List.of("completions", "prompt-errors"),
                    records.size(), Duration.ofSeconds(5), r -> print(out, r.topic(), r.key(), r.value()));
            out.printf("Done: %d of %d records answered (exactly once, read_committed).%n", seen, records.size());
            return seen == records.size() ? 0 : 1;
        }
    }

    private static void print(PrintWriter out, String topic, byte[] key, byte[] value) {
        try {
            JsonNode n = JSON.readTree(value);
            if (topic.equals("prompt-errors")) {
                out.printf("! %s: %s: %s%n", key == null ? "?" : new String(key, StandardCharsets.UTF_8), n.at("/error/code").asText(), n.at("/error/message").asText());
            } else {
                out.printf("< %s [%s, %d tokens, %.0f ms]: %s%n", n.path("id").asText(), n.path("finish_reason").asText(),
                        n.at("/usage/completion_tokens").asInt(), n.at("/timings/total_ms").asDouble(),
                        n.path("text").asText().strip().replaceAll("\\s*\\R\\s*", " / "));
            }
        } catch (java.io.IOException e) {
            out.printf("? %s%n", new String(value, StandardCharsets.UTF_8));
        }
        out.flush();
    }

    /** models/stories260k next to the launcher (bin/..), or under the working directory. */
    static Path bundledModel() {
        String home = System.getProperty("xpuflow.home");
        for (Path candidate : new Path[] {home == null ? null : Path.of(home, "models", "stories260k"), Path.of("models", "stories260k")}) {
            if (candidate != null && Files.isRegularFile(candidate.resolve("config.json"))) {
                return candidate;
            }
        }
        throw new IllegalStateException("bundled model models/stories260k not found (run from the repository root or pass --model DIR)");
    }
}
