package io.xpuflow.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code xpuflow produce}: one request record to a Kafka topic, in the job's request format, keyed by its
 * id: a prompt to a running {@code demo --keep-running} or {@code KafkaInferenceJob} without Kafka's tools.
 */
@Command(name = "produce", description = "Send one request (a prompt, or a JSON request as is) to a Kafka topic,"
        + " keyed by its id, e.g. to a running 'xpuflow demo --keep-running'.")
final class ProduceCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Mixin
    XpuFlowCli.Basic basic = new XpuFlowCli.Basic();

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = {"-b", "--bootstrap"}, required = true, paramLabel = "HOST:PORT",
            description = "Kafka bootstrap servers (the demo prints its own).")
    String bootstrap;

    @Option(names = {"-t", "--topic"}, defaultValue = "prompts", paramLabel = "TOPIC", description = "Topic (default ${DEFAULT-VALUE}).")
    String topic;

    @ArgGroup(multiplicity = "1")
    Body body;

    static final class Body {
        @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "A text prompt: sends {\"id\": ID, \"prompt\": TEXT, ...}.")
        String prompt;

        @Option(names = "--json", paramLabel = "RECORD", description = "A request record as is (it needs an \"id\"; README: Kafka records).")
        String json;
    }

    @Option(names = "--id", paramLabel = "ID", description = "Request id and record key (default: prompt-<epoch ms>).")
    String id;

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N", description = "max_tokens of the request (default: the job's).")
    Integer maxTokens;

    @Option(names = "--temperature", paramLabel = "T", description = "temperature of the request (default: the job's).")
    Double temperature;

    @Override
    public Integer call() throws Exception {
        String key;
        String value;
        if (body.json != null) {
            if (maxTokens != null || temperature != null) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "--max-tokens and --temperature go with --prompt; put them into the --json record");
            }
            JsonNode n;
            try {
                n = JSON.readTree(body.json);
            } catch (java.io.IOException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--json is not JSON: "
                        + XpuFlowCli.oneLine(e));
            }
            key = id != null ? id : n.path("id").isTextual() ? n.path("id").asText() : null;
            value = body.json;
        } else {
            key = id != null ? id : "prompt-" + System.currentTimeMillis();
            ObjectNode n = JSON.createObjectNode().put("id", key).put("prompt", body.prompt);
            if (maxTokens != null) {
                n.put("max_tokens", maxTokens);
            }
            if (temperature != null) {
                n.put("temperature", temperature);
            }
            value = JSON.writeValueAsString(n);
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        RecordMetadata m;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            m = producer.send(new ProducerRecord<>(topic, key, value)).get(45, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw new IllegalStateException("cannot send to " + topic + " at " + bootstrap + ": "
                    + XpuFlowCli.oneLine(e.getCause()), e.getCause());
        }
        PrintWriter out = spec.commandLine().getOut();
        out.printf("Sent %s to %s (partition %d, offset %d): %s%n", key == null ? "a record without id" : key, topic,
                m.partition(), m.offset(), value);
        out.flush();
        return 0;
    }
}
