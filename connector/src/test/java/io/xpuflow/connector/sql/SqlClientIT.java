package io.xpuflow.connector.sql;

import static io.xpuflow.connector.sql.SqlTestSupport.MODEL_PATH;
import static io.xpuflow.connector.sql.SqlTestSupport.EXAMPLE_SCRIPT;
import static io.xpuflow.connector.sql.SqlTestSupport.assertExampleOutputs;
import static io.xpuflow.connector.sql.SqlTestSupport.byId;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.connector.kafka.EmbeddedKafka;
import java.io.File;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.zip.ZipFile;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's SQL example through Flink's own SQL client, the way a user runs it: {@code sql-client.sh
 * embedded -j xpuflow-flink-sql-<version>.jar -f kafka-ml-predict.sql}. The client runs in a JVM of its own
 * whose class path is what a Flink distribution has (Flink's modules, the SQL client and gateway, a logging
 * backend, {@code flink-python} as the distribution's {@code opt/} has it) plus Flink's Kafka SQL connector jar
 * ({@code flink-sql-connector-kafka}, as in {@code lib/});
 * nothing of ours, no Jackson, no Kafka clients but the connector's relocated ones. Our code, the natives and
 * the {@code xpuflow} model provider come only from the SQL jar, through {@code -j}, {@code ADD JAR} or the
 * class path (the distribution's {@code lib/}). The
 * client executes the script in a local Flink (a MiniCluster in the client's JVM, {@code execution.target:
 * local}), which loads the SQL jar in the job's user-code class loader as a cluster's TaskManager does, over
 * Kafka tables on a real in-process broker; the committed rows of both output topics are checked against the
 * engine's own completions.
 *
 * <p>An integration test: it needs the shaded jar, so it runs after {@code package} ({@code mvn verify}).
 */
class SqlClientIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Tom went to the park",
            "The cat sat", "Tim had a big red ball", "There was a dog named Max");

    private static EmbeddedKafka broker;

    @BeforeAll
    static void startBroker() {
        broker = EmbeddedKafka.start();
    }

    @AfterAll
    static void stopBroker() {
        if (broker != null) {
            broker.close();
        }
    }

    @Test
    void theSqlJarHoldsOurCodeNativesAndFactoryButNeitherFlinkNorKafka() throws IOException {
        try (ZipFile jar = new ZipFile(sqlJar().toFile())) {
            List<String> names = jar.stream().map(e -> e.getName()).toList();
            assertThat(names).contains("io/xpuflow/connector/sql/XpuFlowModelProviderFactory.class",
                    "io/xpuflow/connector/sql/LlmGenerateFunction.class",
                    "io/xpuflow/runtime/engine/LlmEngine.class",
                    "io/xpuflow/nativebind/linux-x86_64/libjnixpuflow.so",
                    "org/bytedeco/javacpp/linux-x86_64/libjnijavacpp.so",
                    "com/fasterxml/jackson/databind/ObjectMapper.class",
                    "com/hubspot/jinjava/Jinjava.class");
            String factories = new String(jar.getInputStream(jar.getEntry(
                    "META-INF/services/org.apache.flink.table.factories.Factory")).readAllBytes(), StandardCharsets.UTF_8);
            assertThat(factories.lines().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("#")))
                    .containsExactly(XpuFlowModelProviderFactory.class.getName());
            assertThat(names).as("Flink, the Kafka connector and clients, a broker, Scala, logging: not ours to bring")
                    .noneMatch(n -> n.startsWith("org/apache/flink/") || n.startsWith("org/apache/kafka/")
                            || n.startsWith("kafka/") || n.startsWith("scala/") || n.startsWith("org/slf4j/")
                            || n.startsWith("org/apache/logging/") || n.startsWith("com/ibm/icu/")
                            || n.startsWith("com/esotericsoftware/") || n.startsWith("io/xpuflow/connector/kafka/"));
        }
    }

    @Test
    void theExampleRunsInFlinksSqlClientWithTheJarGivenByDashJ(@TempDir Path work) throws Exception {
        runExample(work, "j", List.of("-j", sqlJar().toString()), "", List.of());
    }

    @Test
    void theExampleRunsInFlinksSqlClientWithTheJarAddedByAddJar(@TempDir Path work) throws Exception {
        runExample(work, "addjar", List.of(), "ADD JAR '" + sqlJar() + "';\n", List.of());
    }

    @Test
    void theExampleRunsInFlinksSqlClientWithTheJarInTheDistributionsLib(@TempDir Path work) throws Exception {
        runExample(work, "lib", List.of(), "", List.of(sqlJar()));
    }

    /**
     * Produces the prompts to {@code <run>-prompts}, runs the example script in the SQL client (with
     * {@code clientArgs}, {@code preamble} before the script and {@code lib} on the client's class path) and
     * checks both output topics.
     */
    private void runExample(Path work, String run, List<String> clientArgs, String preamble, List<Path> lib)
            throws Exception {
        broker.createTopic(run + "-prompts", 2);
        broker.createTopic(run + "-completions", 1);
        broker.createTopic(run + "-stories", 1);
        List<Map.Entry<String, String>> records = new ArrayList<>();
        for (int i = 0; i < PROMPTS.size(); i++) {
            records.add(Map.entry("p" + i, JSON.createObjectNode().put("id", "p" + i).put("prompt", PROMPTS.get(i))
                    .toString()));
        }
        broker.produceStrings(run + "-prompts", records);

        // the example as it is, but for the broker, the model directory, topics of this run and a short
        // checkpoint interval (the bounded source's final checkpoint commits the transactions)
        String script = preamble + Files.readString(EXAMPLE_SCRIPT)
                .replace("localhost:9092", broker.bootstrapServers())
                .replace("/opt/xpuflow/models/stories260k", MODEL_PATH)
                .replace("'topic' = 'prompts'", "'topic' = '" + run + "-prompts'")
                .replace("'topic' = 'completions'", "'topic' = '" + run + "-completions'")
                .replace("'topic' = 'stories'", "'topic' = '" + run + "-stories'")
                .replace("'sink.transactional-id-prefix' = 'xpuflow-sql-example-",
                        "'sink.transactional-id-prefix' = '" + run + "-")
                .replace("'execution.checkpointing.interval' = '10s'", "'execution.checkpointing.interval' = '500ms'");
        assertThat(script).contains(run + "-prompts", run + "-completions", run + "-stories", broker.bootstrapServers());
        Path scriptFile = work.resolve("kafka-ml-predict.sql");
        Files.writeString(scriptFile, script, StandardCharsets.UTF_8);

        Path conf = Files.createDirectories(work.resolve("conf"));
        Files.writeString(conf.resolve("config.yaml"), String.join("\n",
                // a MiniCluster in the client's JVM (its REST endpoint, and the client's embedded SQL gateway,
                // listen on localhost at free ports)
                "execution.target: local",
                "taskmanager.numberOfTaskSlots: 2",
                "parallelism.default: 1",
                // the client waits for the INSERT job to end instead of returning once it is submitted
                "table.dml-sync: true",
                "sql-client.execution.result-mode: tableau") + "\n", StandardCharsets.UTF_8);

        List<String> args = new ArrayList<>(List.of("embedded"));
        args.addAll(clientArgs);
        args.addAll(List.of("-f", scriptFile.toString()));
        Path log = work.resolve("sql-client.log");
        Process client = start(work, conf, log, args, lib);
        boolean ended = client.waitFor(4, TimeUnit.MINUTES);
        if (!ended) {
            client.destroyForcibly();
        }
        String output = Files.readString(log, StandardCharsets.UTF_8);
        assertThat(ended).as("the SQL client ended; its output:\n%s", tail(output)).isTrue();
        assertThat(client.exitValue()).as("the SQL client's exit code; its output:\n%s", tail(output)).isZero();
        assertThat(output).as("the SQL client's output").doesNotContain("[ERROR]");

        Map<String, JsonNode> completions = byId(broker.readCommitted(run + "-completions", PROMPTS.size(),
                Duration.ofMinutes(1)));
        Map<String, JsonNode> stories = byId(broker.readCommitted(run + "-stories", PROMPTS.size(), Duration.ofMinutes(1)));
        assertExampleOutputs(PROMPTS, completions, stories);
    }

    /**
     * {@code java -cp <Flink's class path, the Kafka SQL connector, lib> SqlClient ARGS}, as {@code
     * bin/sql-client.sh} starts it; with the JDK of this JVM, or of {@code -Dxpuflow.sql.client.java.home=DIR}.
     */
    private static Process start(Path work, Path conf, Path log, List<String> args, List<Path> lib) throws IOException {
        List<String> command = new ArrayList<>();
        String javaHome = System.getProperty("xpuflow.sql.client.java.home", System.getProperty("java.home"));
        command.add(Path.of(javaHome, "bin", "java").toString());
        command.add("-Xmx1g");
        // what a Flink distribution's config.yaml puts in env.java.opts.all for Java 17
        for (String pkg : List.of("java.util", "java.lang", "java.lang.reflect", "java.io", "java.net", "java.nio",
                "sun.nio.ch", "java.text", "java.time", "java.util.concurrent", "java.util.concurrent.atomic",
                "java.util.concurrent.locks")) {
            command.add("--add-opens=java.base/" + pkg + "=ALL-UNNAMED");
        }
        for (String pkg : List.of("sun.net.util", "sun.nio.ch", "sun.net.www")) {
            command.add("--add-exports=java.base/" + pkg + "=ALL-UNNAMED");
        }
        // the JavaCPP settings this JVM runs with (the README's TaskManager settings, and a cache under target/)
        ManagementFactory.getRuntimeMXBean().getInputArguments().stream().filter(a -> a.startsWith("-Dorg.bytedeco"))
                .forEach(command::add);
        command.add("-Dorg.slf4j.simpleLogger.defaultLogLevel=info");
        // bin/sql-client.sh: lib/ (here with the Kafka SQL connector) and opt/ (flink-python among others)
        List<String> classpath = new ArrayList<>(List.of(distributionClasspath(), built("xpuflow.kafka.sql.jar").toString(),
                built("xpuflow.flink.python.jar").toString()));
        lib.forEach(jar -> classpath.add(jar.toString()));
        command.addAll(List.of("-cp", String.join(File.pathSeparator, classpath), "org.apache.flink.table.client.SqlClient"));
        command.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(command).directory(work.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().put("FLINK_CONF_DIR", conf.toString());
        return pb.start();
    }

    /**
     * This JVM's class path less everything of ours and everything the SQL jar or the Kafka SQL connector
     * brings: Flink's modules with their dependencies, the SQL client and gateway, a logging backend — what
     * a Flink distribution's {@code lib/} and {@code opt/} hold, more or less. Checked: none of our classes,
     * no JavaCPP, Jackson, Jinjava, Kafka clients or unshaded Kafka connector can be loaded from it.
     */
    private static String distributionClasspath() {
        // by directory in the local repository, by file name for the reactor's own jars and target/ folders
        List<String> notFlinks = List.of("/io/xpuflow/", "/org/bytedeco/", "/org/apache/kafka/",
                "/flink-connector-kafka/", "/com/fasterxml/", "/com/hubspot/", "/com/google/", "/org/scala-lang/",
                "/org/junit/", "/org/assertj/", "/target/", "/xpuflow-", "/javacpp-", "/kafka-", "/kafka_",
                "/jackson-", "/jinjava-");
        String classpath = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(entry -> notFlinks.stream().noneMatch(entry.replace(File.separatorChar, '/')::contains))
                .collect(Collectors.joining(File.pathSeparator));
        try (URLClassLoader distribution = new URLClassLoader(Arrays.stream(classpath.split(File.pathSeparator))
                .map(e -> toUrl(Path.of(e))).toArray(URL[]::new), ClassLoader.getPlatformClassLoader())) {
            assertThat(distribution.loadClass("org.apache.flink.table.client.SqlClient")).isNotNull();
            assertThat(distribution.loadClass("org.apache.flink.table.planner.loader.DelegatePlannerFactory")).isNotNull();
            assertThat(distribution.loadClass("org.apache.flink.formats.json.JsonFormatFactory")).isNotNull();
            for (String absent : List.of(XpuFlowModelProviderFactory.class.getName(), "org.bytedeco.javacpp.Loader",
                    "com.fasterxml.jackson.databind.ObjectMapper", "com.hubspot.jinjava.Jinjava",
                    "org.apache.kafka.clients.consumer.KafkaConsumer",
                    "org.apache.flink.streaming.connectors.kafka.table.KafkaDynamicTableFactory")) {
                assertThatThrownBy(() -> distribution.loadClass(absent)).as("%s on the distribution's class path", absent)
                        .isInstanceOf(ClassNotFoundException.class);
            }
        } catch (IOException | ClassNotFoundException e) {
            throw new IllegalStateException("cannot check the distribution's class path", e);
        }
        return classpath;
    }

    private static Path sqlJar() {
        return built("xpuflow.sql.jar");
    }

    /** A jar the build put under target/ (the failsafe configuration names it in a system property). */
    private static Path built(String property) {
        Path jar = Path.of(System.getProperty(property, "(" + property + " not set)")).toAbsolutePath();
        assertThat(jar).as("%s: made by 'mvn package' / copied by the build; run with 'mvn verify'", property)
                .isRegularFile();
        return jar;
    }


    private static String tail(String output) {
        List<String> lines = output.lines().toList();
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 80), lines.size()));
    }

    private static URL toUrl(Path p) {
        try {
            return p.toUri().toURL();
        } catch (java.net.MalformedURLException e) {
            throw new IllegalArgumentException(p.toString(), e);
        }
    }
}
