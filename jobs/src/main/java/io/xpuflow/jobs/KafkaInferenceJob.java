package io.xpuflow.jobs;

import io.xpuflow.cli.FormatOptions;
import io.xpuflow.connector.kafka.KafkaInferencePipeline;
import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.operators.LlmAsyncFunction;
import io.xpuflow.runtime.sample.SamplingParams;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The Kafka inference job: prompts (JSON) from one topic, completions (JSON) to another, errors to a
 * dead-letter topic, exactly once.
 *
 * <pre>
 * flink run -c io.xpuflow.jobs.KafkaInferenceJob jobs/target/xpuflow-job.jar \
 *     --bootstrap-servers kafka:9092 --input-topic prompts --output-topic completions \
 *     --dead-letter-topic prompt-errors --model /models/mimo --parallelism 2 --checkpoint-interval 10s
 * </pre>
 *
 * Every parallel subtask of one TaskManager shares one engine (weights mapped once, one KV cache);
 * give each TaskManager the cores its engine should use ({@code --threads}).
 */
@Command(name = "kafka-inference-job", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Flink job: LLM completions for JSON prompts from Kafka, exactly once.")
public final class KafkaInferenceJob implements Callable<Integer> {

    @Option(names = "--bootstrap-servers", required = true, paramLabel = "HOST:PORT", description = "Kafka bootstrap servers.")
    String bootstrapServers;

    @Option(names = "--input-topic", required = true, paramLabel = "TOPIC", description = "Topic of JSON requests.")
    String inputTopic;

    @Option(names = "--output-topic", required = true, paramLabel = "TOPIC", description = "Topic of JSON results.")
    String outputTopic;

    @Option(names = "--dead-letter-topic", paramLabel = "TOPIC",
            description = "Topic of error records (default: errors go to the output topic).")
    String deadLetterTopic;

    @Option(names = "--consumer-group", defaultValue = "xpuflow", paramLabel = "ID", description = "Kafka consumer group (default ${DEFAULT-VALUE}).")
    String consumerGroup;

    @Option(names = "--transactional-id-prefix", paramLabel = "PREFIX",
            description = "Prefix of the sink's Kafka transactional ids, unique per job on a cluster (default: the consumer group).")
    String transactionalIdPrefix;

    @Option(names = "--kafka-property", paramLabel = "KEY=VALUE",
            description = "A Kafka client property for the source and the sink, e.g. security.protocol=SASL_SSL (repeatable).")
    Map<String, String> kafkaProperties = new LinkedHashMap<>();

    @Option(names = "--consumer-property", paramLabel = "KEY=VALUE", description = "A Kafka consumer property of the source (repeatable).")
    Map<String, String> consumerProperties = new LinkedHashMap<>();

    @Option(names = "--producer-property", paramLabel = "KEY=VALUE", description = "A Kafka producer property of the sink (repeatable).")
    Map<String, String> producerProperties = new LinkedHashMap<>();

    @Option(names = "--delivery-guarantee", defaultValue = "exactly-once", paramLabel = "G", converter = GuaranteeConverter.class,
            description = "exactly-once (Kafka transactions, committed at checkpoints), at-least-once or none (default ${DEFAULT-VALUE}).")
    DeliveryGuarantee deliveryGuarantee;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Checkpoint directory on every TaskManager.")
    String model;

    @Option(names = "--parallelism", defaultValue = "1", paramLabel = "N", description = "Parallelism of the job (default ${DEFAULT-VALUE}).")
    int parallelism;

    @Option(names = "--checkpoint-interval", defaultValue = "10s", paramLabel = "DURATION", converter = DurationConverter.class,
            description = "Checkpoint interval; results become visible to read_committed readers at each checkpoint (default ${DEFAULT-VALUE}).")
    Duration checkpointInterval;

    @Option(names = "--bounded", description = "Stop at the input's latest offsets instead of running forever.")
    boolean bounded;

    /** Where a job without a checkpoint starts reading the input topic. */
    enum StartingOffsets {
        /** The consumer group's committed offsets; the earliest ones for a new group (the pipeline's default). */
        COMMITTED,
        EARLIEST,
        LATEST
    }

    @Option(names = "--starting-offsets", defaultValue = "committed", paramLabel = "FROM",
            description = "Where a job without a checkpoint starts: committed (the group's offsets, earliest for a new"
                    + " group), earliest or latest (default ${DEFAULT-VALUE}).")
    StartingOffsets startingOffsets;

    @Option(names = "--ordered", description = "Emit results in input order per subtask (default: as they finish).")
    boolean ordered;

    @Option(names = "--threads", defaultValue = "0", paramLabel = "N", description = "Engine kernel threads per TaskManager (default: all cores).")
    int threads;

    @Option(names = "--kv-cache-memory", defaultValue = "512", paramLabel = "MIB", description = "KV cache budget per engine in MiB (default ${DEFAULT-VALUE}).")
    long kvCacheMib;

    @Option(names = "--max-num-seqs", defaultValue = "64", paramLabel = "N", description = "Requests running at once per engine (default ${DEFAULT-VALUE}).")
    int maxNumSeqs;

    @Option(names = "--log-stats-interval", defaultValue = "10s", paramLabel = "DURATION", converter = DurationConverter.class,
            description = "How often each engine logs its stats line while it works; 0: never (default ${DEFAULT-VALUE}).")
    Duration logStatsInterval;

    @Option(names = "--max-model-len", defaultValue = "0", paramLabel = "N", description = "Longest sequence (default: the model's).")
    int maxModelLen;

    @Mixin
    FormatOptions formats = new FormatOptions();

    @Option(names = "--async-capacity", defaultValue = "64", paramLabel = "N", description = "Requests in flight per subtask (default ${DEFAULT-VALUE}).")
    int asyncCapacity;

    @Option(names = "--timeout", defaultValue = "10m", paramLabel = "DURATION", converter = DurationConverter.class,
            description = "Per-request timeout, queueing included (default ${DEFAULT-VALUE}).")
    Duration timeout;

    @Option(names = "--timeout-policy", defaultValue = "emit-error", paramLabel = "POLICY",
            converter = TimeoutPolicyConverter.class,
            description = "What a timed-out request becomes: emit-error (a TIMEOUT error record) or fail (the job"
                    + " fails and restarts) (default ${DEFAULT-VALUE}).")
    LlmAsyncFunction.TimeoutPolicy timeoutPolicy;

    @Option(names = "--max-tokens", defaultValue = "128", paramLabel = "N", description = "Default max_tokens (default ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T", description = "Default temperature (default ${DEFAULT-VALUE}: greedy).")
    double temperature;

    @Option(names = "--top-p", defaultValue = "1", paramLabel = "P", description = "Default top_p (default ${DEFAULT-VALUE}).")
    double topP;

    @Option(names = "--top-k", defaultValue = "0", paramLabel = "K", description = "Default top_k (default 0: off).")
    int topK;

    @Option(names = "--stop", paramLabel = "TEXT", description = "Default stop string (repeatable).")
    List<String> stop = List.of();

    public static void main(String[] args) {
        System.exit(commandLine(new KafkaInferenceJob()).execute(args));
    }

    /** The command line of {@code job}: enum values in any case ({@code --starting-offsets latest}). */
    static CommandLine commandLine(KafkaInferenceJob job) {
        return new CommandLine(job).setCaseInsensitiveEnumValuesAllowed(true);
    }

    @Override
    public Integer call() throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        configure(env);
        env.execute("xpuflow: " + inputTopic + " -> " + outputTopic);
        return 0;
    }

    /** Adds the pipeline to {@code env} with checkpointing and parallelism from the arguments. */
    void configure(StreamExecutionEnvironment env) {
        env.setParallelism(parallelism);
        env.enableCheckpointing(checkpointInterval.toMillis(), CheckpointingMode.EXACTLY_ONCE);
        pipeline().addTo(env);
    }

    /** The engine every TaskManager opens. */
    EngineSpec engineSpec() {
        return formats.applyTo(EngineSpec.of(model).withThreads(threads).withKvCacheBytes(kvCacheMib << 20)
                .withMaxNumSeqs(maxNumSeqs).withMaxModelLen(maxModelLen).withLogStatsInterval(logStatsInterval));
    }

    KafkaInferencePipeline pipeline() {
        EngineSpec engine = engineSpec();
        SamplingParams defaults = SamplingParams.builder().maxTokens(maxTokens).temperature(temperature).topP(topP)
                .topK(topK).stop(stop).build();
        KafkaInferencePipeline.Builder b = KafkaInferencePipeline.builder().bootstrapServers(bootstrapServers)
                .inputTopic(inputTopic).outputTopic(outputTopic).consumerGroup(consumerGroup).engine(engine)
                .samplingDefaults(SamplingDefaults.of(defaults)).asyncCapacity(asyncCapacity).timeout(timeout)
                .timeoutPolicy(timeoutPolicy).orderedOutput(ordered).bounded(bounded);
        switch (startingOffsets) {
            case COMMITTED -> { } // the pipeline's default
            case EARLIEST -> b.startingOffsets(OffsetsInitializer.earliest());
            case LATEST -> b.startingOffsets(OffsetsInitializer.latest());
        }
        if (deadLetterTopic != null) {
            b.deadLetterTopic(deadLetterTopic);
        }
        if (transactionalIdPrefix != null) {
            b.transactionalIdPrefix(transactionalIdPrefix);
        }
        b.deliveryGuarantee(deliveryGuarantee);
        kafkaProperties.forEach(b::property);
        consumerProperties.forEach(b::sourceProperty);
        producerProperties.forEach(b::sinkProperty);
        return b.build();
    }

    /** {@code emit-error} or {@code fail}. */
    static final class TimeoutPolicyConverter implements CommandLine.ITypeConverter<LlmAsyncFunction.TimeoutPolicy> {
        @Override
        public LlmAsyncFunction.TimeoutPolicy convert(String v) {
            return switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
                case "emit-error" -> LlmAsyncFunction.TimeoutPolicy.EMIT_ERROR;
                case "fail" -> LlmAsyncFunction.TimeoutPolicy.FAIL;
                default -> throw new CommandLine.TypeConversionException("'" + v + "' is not a timeout policy: emit-error or fail");
            };
        }
    }

    /** {@code exactly-once}, {@code at-least-once} or {@code none}, as Flink's {@link DeliveryGuarantee} writes them. */
    static final class GuaranteeConverter implements CommandLine.ITypeConverter<DeliveryGuarantee> {
        @Override
        public DeliveryGuarantee convert(String v) {
            for (DeliveryGuarantee g : DeliveryGuarantee.values()) {
                if (g.toString().equalsIgnoreCase(v.trim())) {
                    return g;
                }
            }
            throw new CommandLine.TypeConversionException("'" + v + "' is not a delivery guarantee: exactly-once,"
                    + " at-least-once or none");
        }
    }

    /** Durations as {@code 500ms}, {@code 10s}, {@code 5m} or ISO-8601 ({@code PT10S}). */
    /** Durations as {@code 500ms}, {@code 10s}, {@code 5m}, {@code 1h}, ISO-8601 {@code PT10S}, or {@code 0}. */
    public static final class DurationConverter implements CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String v) {
            String s = v.trim().toLowerCase(java.util.Locale.ROOT);
            if (s.equals("0")) {
                return Duration.ZERO; // no unit needed to say "off"
            }
            try {
                if (s.startsWith("pt")) {
                    return Duration.parse(s);
                }
                if (s.endsWith("ms")) {
                    return Duration.ofMillis(Long.parseLong(s.substring(0, s.length() - 2)));
                }
                long n = Long.parseLong(s.substring(0, s.length() - 1));
                return switch (s.charAt(s.length() - 1)) {
                    case 's' -> Duration.ofSeconds(n);
                    case 'm' -> Duration.ofMinutes(n);
                    case 'h' -> Duration.ofHours(n);
                    default -> throw new NumberFormatException();
                };
            } catch (RuntimeException e) {
                throw new CommandLine.TypeConversionException("'" + v + "' is not a duration such as 500ms, 10s, 5m or PT10S");
            }
        }
    }
}
