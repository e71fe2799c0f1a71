package io.xpuflow.connector.kafka;

import io.xpuflow.connector.records.RequestParser;
import io.xpuflow.connector.records.ResponseWriter;
import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.operators.LlmAsyncFunction;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.sink.KafkaSinkBuilder;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.datastream.AsyncDataStream;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Kafka in, Kafka out: JSON requests from an input topic, completions to an output topic, bad input
 * and failed requests to a dead-letter topic, with exactly-once delivery by default.
 *
 * <pre>{@code
 * StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
 * env.enableCheckpointing(10_000);                       // exactly-once commits on checkpoints
 * KafkaInferencePipeline.builder()
 *         .bootstrapServers("kafka:9092")
 *         .inputTopic("prompts").outputTopic("completions").deadLetterTopic("prompts-dlq")
 *         .consumerGroup("xpuflow-stories")
 *         .engine(EngineSpec.of("/models/stories260k"))
 *         .samplingDefaults(SamplingDefaults.of(SamplingParams.builder().maxTokens(128).build()))
 *         .build()
 *         .addTo(env);
 * env.execute("xpuflow");
 * }</pre>
 *
 * <p>Required: bootstrap servers, input and output topic, consumer group and engine. The job is
 * {@link #source()} (a {@link KafkaSource} of {@link PromptRecord}s, {@code read_committed}) →
 * {@link #generate} ({@link AsyncDataStream#unorderedWait} with an {@link LlmAsyncFunction} that
 * parses with {@link JsonRequestMapper} and writes with {@link JsonResultMapper}) → {@link #sink()}
 * (one {@link KafkaSink} writing results and errors, see {@link OutputRecordSerializationSchema}).
 * Each piece is public, so a DataStream program can use them in its own topology.
 *
 * <p><b>Exactly once.</b> With {@link DeliveryGuarantee#EXACTLY_ONCE} (the default) every prompt
 * yields exactly one committed output, also across failures: the source's offsets and the async
 * operator's in-flight prompts are part of each checkpoint, the sink writes in Kafka transactions
 * committed when a checkpoint completes, and a prompt that is replayed after a restore generates
 * the same text, because sampling is seeded from the request id when the request has no seed. This
 * needs checkpointing, so {@link #addTo} refuses an environment without it; outputs become visible
 * at each checkpoint (to {@code read_committed} consumers), so the checkpoint interval is the
 * latency floor. The transactional id prefix (default: the consumer group) must be unique among the
 * jobs writing to the cluster, and the transaction timeout (default 10 minutes) must not exceed the
 * broker's {@code transaction.max.timeout.ms} (15 minutes by default).
 *
 * <p><b>No poison pills.</b> A record the sink's producer refuses ({@code max.request.size}) would fail
 * the job, and the restart would replay the same request into the same failure. The function's mapper
 * keeps every output within {@link #recordSizeLimit()} (taken from the sink's producer properties): a
 * result too large becomes an {@code OUTPUT_TOO_LARGE} error record, an error record echoes as much of
 * its input as fits; the sink's {@link OutputRecordSerializationSchema} replaces anything still too large.
 *
 * <p>Outputs are unordered by default (a short request overtakes a long one); they keep their
 * input's key, so they are partitioned like the prompts. {@link Builder#orderedOutput} keeps each
 * subtask's input order at the price of head-of-line blocking.
 */
public final class KafkaInferencePipeline {
    private static final Logger LOG = LoggerFactory.getLogger(KafkaInferencePipeline.class);

    /** Operator uids, stable so that savepoints survive changes of the job around them. */
    public static final String SOURCE_UID = "xpuflow-kafka-source";
    public static final String GENERATE_UID = "xpuflow-generate";
    public static final String SINK_UID = "xpuflow-kafka-sink";

    private final String inputTopic;
    private final String outputTopic;
    private final String deadLetterTopic;
    private final String modelPath;
    private final DeliveryGuarantee deliveryGuarantee;
    private final Duration timeout;
    private final int asyncCapacity;
    private final boolean orderedOutput;
    private final KafkaSource<PromptRecord> source;
    private final LlmAsyncFunction<PromptRecord, OutputRecord> function;
    private final KafkaSink<OutputRecord> sink;
    private final RecordSizeLimit recordSizeLimit;

    private KafkaInferencePipeline(Builder b) {
        this.inputTopic = b.inputTopic;
        this.outputTopic = b.outputTopic;
        this.deadLetterTopic = b.deadLetterTopic;
        this.modelPath = b.engine.modelPath();
        this.deliveryGuarantee = b.deliveryGuarantee;
        this.timeout = b.timeout;
        this.asyncCapacity = b.asyncCapacity;
        this.orderedOutput = b.orderedOutput;
        this.source = b.buildSource();
        // the producer's own limit, so that no output record (result or error) can fail the sink
        this.recordSizeLimit = RecordSizeLimit.ofProducer(b.sinkProperties);
        this.function = new LlmAsyncFunction<>(b.engine, new JsonRequestMapper(new RequestParser(b.samplingDefaults,
                b.maxPromptBytes)), new JsonResultMapper(new ResponseWriter(b.maxInputEchoBytes), recordSizeLimit,
                modelName(modelPath)),
                b.timeoutPolicy);
        this.sink = b.buildSink(recordSizeLimit);
    }

    /**
     * The name results carry in their {@code model} field and {@code xpuflow.model} header: the model
     * directory's name ({@code /models/stories260k} → {@code stories260k}). The engine exposes no
     * {@code _name_or_path} of the checkpoint's config, and the directory is what the job was given.
     */
    static String modelName(String modelPath) {
        java.nio.file.Path name = java.nio.file.Path.of(modelPath).normalize().getFileName();
        return name == null ? modelPath : name.toString();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The Kafka source of the input topic. */
    public KafkaSource<PromptRecord> source() {
        return source;
    }

    /** The inference function, for {@link AsyncDataStream} in a topology of one's own. */
    public LlmAsyncFunction<PromptRecord, OutputRecord> function() {
        return function;
    }

    /** The sink of results and errors. */
    public KafkaSink<OutputRecord> sink() {
        return sink;
    }

    /** The largest output record, from the sink's {@code max.request.size} and {@code buffer.memory}. */
    public RecordSizeLimit recordSizeLimit() {
        return recordSizeLimit;
    }

    public DeliveryGuarantee deliveryGuarantee() {
        return deliveryGuarantee;
    }

    /** Runs the inference function over {@code prompts} with this pipeline's timeout, capacity and ordering. */
    public SingleOutputStreamOperator<OutputRecord> generate(DataStream<PromptRecord> prompts) {
        long timeoutMs = timeout.toMillis();
        SingleOutputStreamOperator<OutputRecord> out = orderedOutput
                ? AsyncDataStream.orderedWait(prompts, function, timeoutMs, TimeUnit.MILLISECONDS, asyncCapacity)
                : AsyncDataStream.unorderedWait(prompts, function, timeoutMs, TimeUnit.MILLISECONDS, asyncCapacity);
        return out.returns(TypeInformation.of(OutputRecord.class)).name("generate").uid(GENERATE_UID);
    }

    /**
     * Adds source → generate → sink to {@code env}.
     *
     * @return the generated records (already connected to the sink), for more consumers
     * @throws IllegalStateException for {@link DeliveryGuarantee#EXACTLY_ONCE} without checkpointing:
     *     the sink's transactions would never commit
     */
    public DataStream<OutputRecord> addTo(StreamExecutionEnvironment env) {
        Objects.requireNonNull(env, "env");
        if (deliveryGuarantee == DeliveryGuarantee.EXACTLY_ONCE && !env.getCheckpointConfig().isCheckpointingEnabled()) {
            throw new IllegalStateException("exactly-once delivery commits Kafka transactions on checkpoints, but"
                    + " checkpointing is off: call env.enableCheckpointing(interval) (or set execution.checkpointing.interval),"
                    + " or choose deliveryGuarantee(AT_LEAST_ONCE)");
        }
        // short operator names: Flink truncates the chained task name in metrics beyond 80 characters
        DataStream<PromptRecord> prompts = env.fromSource(source, WatermarkStrategy.noWatermarks(), inputTopic).uid(SOURCE_UID);
        SingleOutputStreamOperator<OutputRecord> outputs = generate(prompts);
        outputs.sinkTo(sink).name(outputTopic).uid(SINK_UID);
        LOG.info("Kafka inference pipeline: {} -> {} (errors -> {}), {}, model {}", inputTopic, outputTopic,
                deadLetterTopic == null ? outputTopic : deadLetterTopic, deliveryGuarantee,
                modelPath);
        return outputs;
    }

    /**
     * Settings of a {@link KafkaInferencePipeline}. Setters check their own value; {@link #build()}
     * checks that the required ones are there.
     */
    public static final class Builder {
        /** Default in-flight requests per subtask (Flink's async capacity). */
        public static final int DEFAULT_ASYNC_CAPACITY = 64;
        /** Default operator timeout of one request, queueing in the engine included. */
        public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(10);
        /**
         * Default {@code max.poll.records} of the source (Kafka's is 500). After each completed checkpoint the
         * source commits its offsets to the consumer group, as a task of its fetcher thread that runs only
         * between two fetches; behind a slow async operator the fetcher spends its time blocked handing a batch
         * to the reader's full queue, which takes the next batch only once it has emitted every prompt of the
         * current one. With batches of 500 prompts the commits waited for minutes (in a test, no offsets for
         * 25 s while 258 of 300 outputs were committed), and a job killed meanwhile left the group without
         * offsets. Batches of 16 drain within a few generations. A consumer property overrides it.
         */
        public static final int DEFAULT_MAX_POLL_RECORDS = 16;
        /** Default Kafka transaction timeout: below the broker's default maximum of 15 minutes. */
        public static final Duration DEFAULT_TRANSACTION_TIMEOUT = Duration.ofMinutes(10);

        private String bootstrapServers;
        private String inputTopic;
        private String outputTopic;
        private String deadLetterTopic;
        private String consumerGroup;
        private EngineSpec engine;
        private SamplingDefaults samplingDefaults = SamplingDefaults.ENGINE;
        private int maxPromptBytes = RequestParser.DEFAULT_MAX_PROMPT_BYTES;
        private int maxInputEchoBytes = ResponseWriter.DEFAULT_MAX_INPUT_BYTES;
        private int asyncCapacity = DEFAULT_ASYNC_CAPACITY;
        private Duration timeout = DEFAULT_TIMEOUT;
        private LlmAsyncFunction.TimeoutPolicy timeoutPolicy = LlmAsyncFunction.TimeoutPolicy.EMIT_ERROR;
        private boolean orderedOutput;
        private OffsetsInitializer startingOffsets;
        private OffsetsInitializer stoppingOffsets;
        private DeliveryGuarantee deliveryGuarantee = DeliveryGuarantee.EXACTLY_ONCE;
        private String transactionalIdPrefix;
        private Duration transactionTimeout = DEFAULT_TRANSACTION_TIMEOUT;
        private final Map<String, String> sourceProperties = new LinkedHashMap<>();
        private final Map<String, String> sinkProperties = new LinkedHashMap<>();

        private Builder() {}

        public Builder bootstrapServers(String servers) {
            this.bootstrapServers = nonBlank(servers, "bootstrap servers");
            return this;
        }

        public Builder inputTopic(String topic) {
            this.inputTopic = nonBlank(topic, "input topic");
            return this;
        }

        public Builder outputTopic(String topic) {
            this.outputTopic = nonBlank(topic, "output topic");
            return this;
        }

        /** Topic of error records; without one (the default) they go to the output topic. */
        public Builder deadLetterTopic(String topic) {
            this.deadLetterTopic = nonBlank(topic, "dead-letter topic");
            return this;
        }

        /** Consumer group of the source: its committed offsets are where a job without state starts. */
        public Builder consumerGroup(String group) {
            this.consumerGroup = nonBlank(group, "consumer group");
            return this;
        }

        /** The model and engine settings; equal specs share one engine per TaskManager. */
        public Builder engine(EngineSpec spec) {
            this.engine = Objects.requireNonNull(spec, "engine spec");
            return this;
        }

        /** Sampling for the fields a request leaves out. Default: {@link SamplingDefaults#ENGINE}. */
        public Builder samplingDefaults(SamplingDefaults defaults) {
            this.samplingDefaults = Objects.requireNonNull(defaults, "sampling defaults");
            return this;
        }

        /** Largest prompt in UTF-8 bytes; longer ones become PROMPT_TOO_LONG errors untokenized. Default 256 KiB. */
        public Builder maxPromptBytes(int bytes) {
            this.maxPromptBytes = positive(bytes, "max prompt bytes");
            return this;
        }

        /**
         * Most bytes of the input copied into an error record. Default: no cap of its own, as much as fits
         * the producer's {@code max.request.size}, so a dead letter keeps the request for a replay.
         */
        public Builder maxInputEchoBytes(int bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("max input echo bytes must be >= 0, was " + bytes);
            }
            this.maxInputEchoBytes = bytes;
            return this;
        }

        /** Requests in flight per subtask; the engine's KV budget decides how many run at once. Default 64. */
        public Builder asyncCapacity(int capacity) {
            this.asyncCapacity = positive(capacity, "async capacity");
            return this;
        }

        /** Time a request may take, queueing included, before it becomes a TIMEOUT error. Default 10 minutes. */
        public Builder timeout(Duration timeout) {
            Objects.requireNonNull(timeout, "timeout");
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("timeout must be positive, was " + timeout);
            }
            this.timeout = timeout;
            return this;
        }

        /** What a timed-out request becomes. Default: an error record. */
        public Builder timeoutPolicy(LlmAsyncFunction.TimeoutPolicy policy) {
            this.timeoutPolicy = Objects.requireNonNull(policy, "timeout policy");
            return this;
        }

        /** Emit outputs in input order per subtask (default false: as they finish). */
        public Builder orderedOutput(boolean ordered) {
            this.orderedOutput = ordered;
            return this;
        }

        /**
         * Where a job without state starts reading. Default: the consumer group's committed offsets,
         * or the earliest ones for a new group. A restored job always continues from its checkpoint.
         */
        public Builder startingOffsets(OffsetsInitializer offsets) {
            this.startingOffsets = Objects.requireNonNull(offsets, "starting offsets");
            return this;
        }

        /**
         * Stop at the offsets that are the latest when the job starts, so the job finishes (tests,
         * benchmarks, backfills); {@code false} (the default) reads on forever.
         */
        public Builder bounded(boolean bounded) {
            this.stoppingOffsets = bounded ? OffsetsInitializer.latest() : null;
            return this;
        }

        /** Stop at these offsets (exclusive), so the job finishes once it has served them; see {@link #bounded}. */
        public Builder stoppingOffsets(OffsetsInitializer offsets) {
            this.stoppingOffsets = Objects.requireNonNull(offsets, "stopping offsets");
            return this;
        }

        /** Default {@link DeliveryGuarantee#EXACTLY_ONCE}; it needs checkpointing. */
        public Builder deliveryGuarantee(DeliveryGuarantee guarantee) {
            this.deliveryGuarantee = Objects.requireNonNull(guarantee, "delivery guarantee");
            return this;
        }

        /** Prefix of the sink's Kafka transactional ids, unique per job on the cluster. Default: the consumer group. */
        public Builder transactionalIdPrefix(String prefix) {
            this.transactionalIdPrefix = nonBlank(prefix, "transactional id prefix");
            return this;
        }

        /** The sink's {@code transaction.timeout.ms}; at most the broker's {@code transaction.max.timeout.ms}. Default 10 minutes. */
        public Builder transactionTimeout(Duration timeout) {
            Objects.requireNonNull(timeout, "transaction timeout");
            if (timeout.toMillis() < 1000) {
                throw new IllegalArgumentException("transaction timeout must be at least 1 s, was " + timeout);
            }
            this.transactionTimeout = timeout;
            return this;
        }

        /** A Kafka client property for the source and the sink (security settings, for example). */
        public Builder property(String key, String value) {
            sourceProperty(key, value);
            sinkProperty(key, value);
            return this;
        }

        /** A Kafka consumer property of the source. */
        public Builder sourceProperty(String key, String value) {
            sourceProperties.put(nonBlank(key, "property key"), Objects.requireNonNull(value, key));
            return this;
        }

        /** A Kafka producer property of the sink. */
        public Builder sinkProperty(String key, String value) {
            sinkProperties.put(nonBlank(key, "property key"), Objects.requireNonNull(value, key));
            return this;
        }

        /**
         * Builds the pipeline and adds it to {@code env}: {@code build().addTo(env)}.
         *
         * @throws IllegalStateException as {@link #build()} and {@link KafkaInferencePipeline#addTo} do
         */
        public KafkaInferencePipeline build(StreamExecutionEnvironment env) {
            KafkaInferencePipeline p = build();
            p.addTo(env);
            return p;
        }

        /**
         * @throws IllegalStateException naming the first required setting that is missing
         */
        public KafkaInferencePipeline build() {
            require(bootstrapServers, "bootstrapServers");
            require(inputTopic, "inputTopic");
            require(outputTopic, "outputTopic");
            require(consumerGroup, "consumerGroup");
            require(engine, "engine");
            if (deadLetterTopic != null && (deadLetterTopic.equals(inputTopic))) {
                throw new IllegalStateException("the dead-letter topic must differ from the input topic '" + inputTopic
                        + "': errors would be read again as requests");
            }
            if (outputTopic.equals(inputTopic)) {
                throw new IllegalStateException("the output topic must differ from the input topic '" + inputTopic
                        + "': completions would be read again as requests");
            }
            return new KafkaInferencePipeline(this);
        }

        private static void require(Object value, String setting) {
            if (value == null) {
                throw new IllegalStateException("Kafka inference pipeline: '" + setting + "' is required but not set");
            }
        }

        @SuppressWarnings("deprecation") // OffsetResetStrategy: the connector's API still takes it
        private KafkaSource<PromptRecord> buildSource() {
            KafkaSourceBuilder<PromptRecord> b = KafkaSource.<PromptRecord>builder()
                    .setBootstrapServers(bootstrapServers)
                    .setTopics(inputTopic)
                    .setGroupId(consumerGroup)
                    .setStartingOffsets(startingOffsets != null ? startingOffsets
                            : OffsetsInitializer.committedOffsets(org.apache.kafka.clients.consumer.OffsetResetStrategy.EARLIEST))
                    .setDeserializer(new PromptRecordDeserializationSchema())
                    // prompts written by transactional producers are read once committed, never from aborted attempts
                    .setProperty("isolation.level", "read_committed")
                    .setProperty("max.poll.records", Integer.toString(DEFAULT_MAX_POLL_RECORDS));
            if (stoppingOffsets != null) {
                b.setBounded(stoppingOffsets);
            }
            sourceProperties.forEach((k, v) -> {
                if (k.equals("isolation.level") && !v.equals("read_committed")) {
                    LOG.warn("Source property isolation.level is overridden from read_committed to {}: prompts of aborted"
                            + " transactions will be served", v);
                }
                b.setProperty(k, v);
            });
            return b.build();
        }

        private KafkaSink<OutputRecord> buildSink(RecordSizeLimit limit) {
            KafkaSinkBuilder<OutputRecord> b = KafkaSink.<OutputRecord>builder()
                    .setBootstrapServers(bootstrapServers)
                    .setRecordSerializer(new OutputRecordSerializationSchema(outputTopic, deadLetterTopic, limit))
                    .setDeliveryGuarantee(deliveryGuarantee);
            if (deliveryGuarantee == DeliveryGuarantee.EXACTLY_ONCE) {
                String prefix = transactionalIdPrefix != null ? transactionalIdPrefix : consumerGroup;
                b.setTransactionalIdPrefix(prefix);
                b.setProperty("transaction.timeout.ms", Long.toString(transactionTimeout.toMillis()));
            }
            sinkProperties.forEach(b::setProperty);
            return b.build();
        }

        private static String nonBlank(String s, String what) {
            if (s == null || s.isBlank()) {
                throw new IllegalArgumentException(what + " must not be blank");
            }
            return s;
        }

        private static int positive(int v, String what) {
            if (v < 1) {
                throw new IllegalArgumentException(what + " must be >= 1, was " + v);
            }
            return v;
        }
    }
}
