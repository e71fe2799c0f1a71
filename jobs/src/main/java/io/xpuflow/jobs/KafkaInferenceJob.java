package io.xpuflow.jobs;

import io.xpuflow.cli.FlinkSyntax;
import io.xpuflow.cli.OptionFlags;
import io.xpuflow.connector.kafka.KafkaInferencePipeline;
import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.operators.LlmAsyncFunction;
import io.xpuflow.runtime.engine.EngineOptionDefs;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.options.Surface;
import io.xpuflow.runtime.sample.SamplingOptionDefs;
import io.xpuflow.runtime.sample.SamplingParams;
import java.io.DataInputStream;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.core.execution.RecoveryClaimMode;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;
import org.apache.flink.runtime.checkpoint.Checkpoints;
import org.apache.flink.streaming.api.environment.LocalStreamEnvironment;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The Kafka inference job: prompts (JSON) from one topic, completions (JSON) to another, errors to a
 * dead-letter topic, exactly once.
 *
 * <pre>
 * flink run -p 2 -c io.xpuflow.jobs.KafkaInferenceJob jobs/target/xpuflow-job.jar \
 *     --bootstrap-servers kafka:9092 --input-topic prompts --output-topic completions \
 *     --dead-letter-topic prompt-errors --model /models/mimo --kv-cache-memory 4gb
 * </pre>
 *
 * Parallelism and checkpointing are Flink's ({@code flink run -p}, {@code parallelism.default},
 * {@code execution.checkpointing.interval}) unless {@code --parallelism} or {@code --checkpoint-interval}
 * override them; with no interval anywhere the job checkpoints every 10 s.
 *
 * Every parallel subtask of one TaskManager shares one engine (weights mapped once, one KV cache);
 * give each TaskManager the cores its engine should use ({@code --threads}).
 */
@Command(name = "kafka-inference-job", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Flink job: LLM completions for JSON prompts from Kafka, exactly once.")
public final class KafkaInferenceJob implements Callable<Integer>, OptionFlags.Host {
    private static final Logger LOG = LoggerFactory.getLogger(KafkaInferenceJob.class);
    /** A retained checkpoint's directory in Flink's layout, {@code DIR/<job id>/chk-<n>}. */
    private static final Pattern CHECKPOINT = Pattern.compile("chk-(\\d+)");

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

    /** Parallelism of a local run (no {@code flink run}) without {@code --parallelism}: one engine, one subtask. */
    static final int LOCAL_PARALLELISM = 1;
    /** Checkpoint interval when neither {@code --checkpoint-interval} nor Flink's configuration gives one. */
    static final Duration DEFAULT_CHECKPOINT_INTERVAL = Duration.ofSeconds(10);

    // No defaults here: unset, Flink's own settings apply (flink run -p, parallelism.default,
    // execution.checkpointing.interval); a value given on the job's command line wins over them
    @Option(names = "--parallelism", paramLabel = "N",
            description = "Parallelism of the job (default: flink run -p, else the cluster's parallelism.default;"
                    + " " + LOCAL_PARALLELISM + " when run locally without flink run).")
    Integer parallelism;

    @Option(names = "--checkpoint-interval", paramLabel = "DURATION", converter = FlinkSyntax.DurationConverter.class,
            description = "Checkpoint interval, e.g. 10s or 1min; results become visible to read_committed readers at"
                    + " each checkpoint. 0: no checkpoints (not with --delivery-guarantee exactly-once). Default: the"
                    + " cluster's execution.checkpointing.interval, else 10s.")
    Duration checkpointInterval;

    @Option(names = "--checkpoint-dir", paramLabel = "DIR",
            description = "Keep checkpoints in DIR (a path or a URI such as s3://bucket/xpuflow), retained when the job"
                    + " fails, is killed or cancelled; a job started again with the same DIR resumes from the latest"
                    + " completed checkpoint there: exactly once, prompts in flight included.")
    String checkpointDir;

    @Option(names = "--restore-from", paramLabel = "PATH",
            description = "Start from this checkpoint or savepoint (a chk-N or savepoint directory, or its _metadata);"
                    + " it is left in place (Flink's NO_CLAIM mode).")
    String restoreFrom;

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
                    + " group), earliest or latest (default ${DEFAULT-VALUE}). Committed offsets without a checkpoint"
                    + " lose the prompts that were in flight and repeat the outputs of offsets not yet committed.")
    StartingOffsets startingOffsets;

    @Option(names = "--ordered", description = "Emit results in input order per subtask (default: as they finish).")
    boolean ordered;

    /**
     * One flag per engine option the job takes ({@link EngineOptionDefs}: {@code --threads},
     * {@code --kv-cache-memory}, {@code --max-num-seqs}, {@code --max-num-batched-tokens}, {@code --max-model-len},
     * {@code --weight-format}, {@code --kv-cache-dtype}, {@code --log-stats-interval}), and per sampling option
     * ({@link SamplingOptionDefs}: {@code --max-tokens}, {@code --temperature}, {@code --stop}, ...: the defaults
     * for the fields a request leaves out).
     */
    final OptionFlags flags = new OptionFlags(Surface.JOB_FLAG, EngineOptionDefs.ALL, SamplingOptionDefs.ALL);

    @Override
    public OptionFlags optionFlags() {
        return flags;
    }

    @Option(names = "--async-capacity", defaultValue = "64", paramLabel = "N", description = "Requests in flight per subtask (default ${DEFAULT-VALUE}).")
    int asyncCapacity;

    @Option(names = "--timeout", defaultValue = "10m", paramLabel = "DURATION", converter = FlinkSyntax.DurationConverter.class,
            description = "Per-request timeout, queueing included (default ${DEFAULT-VALUE}).")
    Duration timeout;

    @Option(names = "--timeout-policy", defaultValue = "emit-error", paramLabel = "POLICY",
            converter = TimeoutPolicyConverter.class,
            description = "What a timed-out request becomes: emit-error (a TIMEOUT error record) or fail (the job"
                    + " fails and restarts) (default ${DEFAULT-VALUE}).")
    LlmAsyncFunction.TimeoutPolicy timeoutPolicy;

    /**
     * Runs the job. Under {@code flink run} (and in application mode, where this runs inside the JobManager)
     * Flink calls this method reflectively: it must return, or throw for Flink to report, never end the JVM,
     * so a usage error is thrown as an {@link IllegalArgumentException} with picocli's message and the usage.
     * Launched by plain {@code java} (a local run), it ends the JVM with picocli's exit code, as a CLI should.
     */
    public static void main(String[] args) throws Exception {
        if (runByFlink()) {
            run(args);
        } else {
            System.exit(commandLine(new KafkaInferenceJob()).execute(args));
        }
    }

    /**
     * Whether a Flink client set up this JVM's execution environment ({@code flink run}, application mode): its
     * context factory then makes something other than a local environment. Creating one submits nothing.
     */
    static boolean runByFlink() {
        return !(StreamExecutionEnvironment.getExecutionEnvironment() instanceof LocalStreamEnvironment);
    }

    /** Parses {@code args} and runs the job; a usage error is thrown, {@code --help} prints and returns. */
    static void run(String... args) throws Exception {
        KafkaInferenceJob job = new KafkaInferenceJob();
        CommandLine cl = commandLine(job);
        CommandLine.ParseResult parsed;
        try {
            parsed = cl.parseArgs(args);
        } catch (CommandLine.ParameterException e) {
            throw new IllegalArgumentException(e.getMessage() + System.lineSeparator() + cl.getUsageMessage(), e);
        }
        if (!CommandLine.printHelpIfRequested(parsed)) {
            job.call();
        }
    }

    /**
     * The command line of {@code job}: enum values in any case ({@code --starting-offsets latest}), and the
     * flags generated from the option definitions ({@link OptionFlags}).
     */
    public static CommandLine commandLine(KafkaInferenceJob job) {
        return OptionFlags.install(new CommandLine(job).setCaseInsensitiveEnumValuesAllowed(true));
    }

    @Override
    public Integer call() throws Exception {
        StreamExecutionEnvironment env = environment(flinkSettings());
        configure(env);
        env.execute("xpuflow: " + inputTopic + " -> " + outputTopic);
        return 0;
    }

    /**
     * The cluster's environment under {@code flink run}; otherwise (a plain {@code java} launch) a local
     * one, bound to loopback ({@link LocalFlink}). {@code settings} apply to either.
     */
    StreamExecutionEnvironment environment(Configuration settings) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(settings);
        return env instanceof LocalStreamEnvironment
                ? LocalFlink.environment(parallelism != null ? parallelism : LOCAL_PARALLELISM, settings) : env;
    }

    /**
     * Flink settings from the arguments: checkpoints kept in {@code --checkpoint-dir} and the state to start
     * from ({@code --restore-from}, else the latest checkpoint in {@code --checkpoint-dir}), logged; and a
     * warning when the job starts from the group's committed offsets without state.
     */
    Configuration flinkSettings() throws IOException {
        Configuration c = new Configuration();
        if (checkpointDir != null) {
            c.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
            c.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, uri(checkpointDir));
            // a crash, a kill or a cancel leaves the latest checkpoint in place: the next start resumes from it
            c.set(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION, ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
        }
        if (restoreFrom != null) {
            // NO_CLAIM (Flink's default): a savepoint or checkpoint named by hand is the user's, never deleted by us
            c.set(StateRecoveryOptions.SAVEPOINT_PATH, restoreFrom);
            c.set(StateRecoveryOptions.RESTORE_MODE, RecoveryClaimMode.NO_CLAIM);
            LOG.info("Restoring from {} (NO_CLAIM: it stays in place); --starting-offsets does not apply", restoreFrom);
            return c;
        }
        Optional<String> latest = checkpointDir == null ? Optional.empty() : latestCheckpoint(uri(checkpointDir));
        if (latest.isPresent()) {
            // CLAIM: the checkpoints in DIR are this job's own, left by its previous run. The new run takes the
            // restored one over and deletes it once a newer checkpoint has completed, so DIR keeps one
            // checkpoint however often the job restarts (NO_CLAIM would leave one more behind on every
            // restart, for good, and make the first checkpoint of each run a full one with incremental state)
            c.set(StateRecoveryOptions.SAVEPOINT_PATH, latest.get());
            c.set(StateRecoveryOptions.RESTORE_MODE, RecoveryClaimMode.CLAIM);
            LOG.info("Resuming from the latest completed checkpoint {} (CLAIM); --starting-offsets does not apply",
                    latest.get());
        } else {
            if (checkpointDir != null) {
                LOG.info("No completed checkpoint in {}: starting without state", checkpointDir);
            }
            if (startingOffsets == StartingOffsets.COMMITTED) {
                LOG.warn("Starting without state from the committed offsets of consumer group '{}'. If an earlier run"
                        + " of this job served the topic, the prompts it had in flight are lost and the outputs it"
                        + " committed after its last offset commit are written again. Resume from a checkpoint instead:"
                        + " --checkpoint-dir DIR (on every start) or --restore-from PATH.", consumerGroup);
            }
        }
        return c;
    }

    /** {@code dir} as a URI: a URI stays as it is, a local path becomes an absolute {@code file:} URI. */
    static String uri(String dir) {
        return dir.contains("://") ? dir : java.nio.file.Path.of(dir).toAbsolutePath().normalize().toUri().toString();
    }

    /**
     * The newest completed checkpoint under {@code dir} (Flink's layout: {@code dir/<job id>/chk-<n>/_metadata}),
     * by the time its metadata was written, then by number; one whose metadata cannot be read (cut short by a
     * crash) is skipped.
     */
    static Optional<String> latestCheckpoint(String dir) throws IOException {
        Path root = new Path(dir);
        FileSystem fs = root.getFileSystem();
        if (!fs.exists(root)) {
            return Optional.empty();
        }
        record Candidate(Path dir, long written, long number) {}
        List<Candidate> found = new ArrayList<>();
        for (FileStatus job : fs.listStatus(root)) {
            if (!job.isDir()) {
                continue;
            }
            FileStatus[] checkpoints = fs.listStatus(job.getPath());
            for (FileStatus chk : checkpoints == null ? new FileStatus[0] : checkpoints) {
                Matcher m = CHECKPOINT.matcher(chk.getPath().getName());
                Path metadata = new Path(chk.getPath(), "_metadata");
                if (chk.isDir() && m.matches() && fs.exists(metadata)) {
                    found.add(new Candidate(chk.getPath(), fs.getFileStatus(metadata).getModificationTime(),
                            Long.parseLong(m.group(1))));
                }
            }
        }
        found.sort(Comparator.comparingLong(Candidate::written).thenComparingLong(Candidate::number).reversed());
        for (Candidate candidate : found) {
            try (FSDataInputStream in = fs.open(new Path(candidate.dir(), "_metadata"))) {
                Checkpoints.loadCheckpointMetadata(new DataInputStream(in), KafkaInferenceJob.class.getClassLoader(),
                        candidate.dir().toString());
                return Optional.of(candidate.dir().toString());
            } catch (IOException | RuntimeException e) {
                LOG.warn("Skipping checkpoint {}: its metadata cannot be read ({})", candidate.dir(), e.toString());
            }
        }
        return Optional.empty();
    }

    /**
     * Adds the pipeline to {@code env}. Parallelism and checkpointing are left as Flink set them ({@code flink
     * run -p}, the cluster's configuration) unless given on the job's command line; see {@link #checkpointing}.
     */
    void configure(StreamExecutionEnvironment env) {
        if (parallelism != null) {
            env.setParallelism(parallelism);
        }
        checkpointing(env);
        pipeline().addTo(env);
    }

    /**
     * {@code --checkpoint-interval} if given (0: none); else Flink's {@code execution.checkpointing.interval};
     * else {@link #DEFAULT_CHECKPOINT_INTERVAL}, since the sink commits its output at checkpoints (exactly once:
     * nothing would ever become visible; at least once: offsets would never be committed). Flink itself rejects
     * an interval of 0 in its configuration, so turning checkpoints off is only ever this job's flag. Exactly
     * once needs checkpoints, in Flink's EXACTLY_ONCE mode (an AT_LEAST_ONCE barrier lets a restart replay
     * records already in a committed transaction).
     */
    void checkpointing(StreamExecutionEnvironment env) {
        boolean exactlyOnce = deliveryGuarantee == DeliveryGuarantee.EXACTLY_ONCE;
        if (checkpointInterval != null && checkpointInterval.isZero()) {
            if (exactlyOnce) {
                throw new IllegalArgumentException("--checkpoint-interval 0 turns checkpoints off, but"
                        + " --delivery-guarantee exactly-once commits its Kafka transactions at checkpoints: no result"
                        + " would ever become visible. Give an interval (e.g. 10s), or choose --delivery-guarantee"
                        + " at-least-once or none.");
            }
            env.getCheckpointConfig().disableCheckpointing();
            LOG.info("Checkpoints off (--checkpoint-interval 0)");
            return;
        }
        if (checkpointInterval != null) {
            env.enableCheckpointing(checkpointInterval.toMillis());
            LOG.info("Checkpointing every {} (--checkpoint-interval)", checkpointInterval);
        } else if (env.getCheckpointConfig().isCheckpointingEnabled()) {
            LOG.info("Checkpointing every {} ms ({} of Flink's configuration)", env.getCheckpointInterval(),
                    CheckpointingOptions.CHECKPOINTING_INTERVAL.key());
        } else {
            env.enableCheckpointing(DEFAULT_CHECKPOINT_INTERVAL.toMillis());
            LOG.info("Checkpointing every {}: neither --checkpoint-interval nor Flink's {} sets an interval, and the"
                    + " Kafka sink commits at checkpoints", DEFAULT_CHECKPOINT_INTERVAL,
                    CheckpointingOptions.CHECKPOINTING_INTERVAL.key());
        }
        CheckpointingMode mode = env.getCheckpointConfig().getCheckpointingConsistencyMode();
        if (exactlyOnce && mode != CheckpointingMode.EXACTLY_ONCE) {
            throw new IllegalArgumentException("--delivery-guarantee exactly-once needs EXACTLY_ONCE checkpoints, but"
                    + " Flink's " + CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE.key() + " is " + mode
                    + ". Set it to EXACTLY_ONCE, or choose --delivery-guarantee at-least-once.");
        }
    }

    /** The engine every TaskManager opens. */
    public EngineSpec engineSpec() {
        return EngineSpec.of(model, EngineOptionDefs.apply(EngineOptions.builder(java.nio.file.Path.of(model)),
                flags.values(EngineOptionDefs.ALL)).build());
    }

    /** The sampling of the fields a request leaves out: the definitions' defaults, overridden by the flags. */
    public SamplingDefaults samplingDefaults() {
        return SamplingDefaults.of(SamplingOptionDefs.apply(SamplingParams.builder(), flags.values(SamplingOptionDefs.ALL)).build());
    }

    KafkaInferencePipeline pipeline() {
        EngineSpec engine = engineSpec();
        SamplingDefaults defaults = samplingDefaults();
        KafkaInferencePipeline.Builder b = KafkaInferencePipeline.builder().bootstrapServers(bootstrapServers)
                .inputTopic(inputTopic).outputTopic(outputTopic).consumerGroup(consumerGroup).engine(engine)
                .samplingDefaults(defaults).asyncCapacity(asyncCapacity).timeout(timeout)
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
}
