package io.xpuflow.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.junit.jupiter.api.Test;

/**
 * What {@code xpuflow-job.jar} holds, which the shade plugin's allow-list decides: the job and the engine with
 * its natives, the Kafka connector with its clients, and nothing a Flink distribution brings itself (Flink,
 * its Kryo, ICU4J, commons-math3, ...), nor the test broker or a logging backend. And nothing missing: every
 * class of the connector module's SQL jar (built from scopes, Flink provided) is in it too, so a dependency
 * the engine gains cannot be forgotten by the list.
 *
 * <p>An integration test: it needs the shaded jars, so it runs after {@code package} ({@code mvn verify}).
 */
class JobJarIT {
    /** Top-level packages of what a distribution has or a job jar must not carry. */
    private static final List<String> NOT_IN_A_JOB_JAR = List.of("scala/", "kafka/server/", "kafka/log/",
            "org/apache/kafka/raft/", "org/apache/kafka/metadata/", "org/apache/kafka/storage/",
            "org/apache/kafka/tools/", "org/apache/kafka/common/test/", "org/apache/kafka/coordinator/",
            "com/ibm/icu/", "com/esotericsoftware/",
            "org/apache/commons/math3/", "org/apache/commons/compress/", "org/snakeyaml/engine/", "one/profiler/",
            "org/apache/flink/cep/", "org/slf4j/", "org/apache/logging/", "org/junit/",
            "darwin/", "win/", "freebsd/", "aix/");

    @Test
    void holdsTheJobTheEngineAndTheKafkaConnectorAndNothingOfTheDistribution() throws IOException {
        try (ZipFile job = new ZipFile(built("xpuflow.job.jar").toFile());
             ZipFile kafkaConnector = new ZipFile(Path.of(KafkaSource.class.getProtectionDomain().getCodeSource()
                     .getLocation().getPath()).toFile())) {
            Set<String> names = names(job);
            assertThat(names).contains("io/xpuflow/jobs/KafkaInferenceJob.class",
                    "io/xpuflow/connector/kafka/KafkaInferencePipeline.class",
                    "io/xpuflow/nativebind/linux-x86_64/libjnixpuflow.so",
                    "org/bytedeco/javacpp/linux-x86_64/libjnijavacpp.so",
                    "org/apache/kafka/clients/consumer/KafkaConsumer.class",
                    "linux/amd64/libzstd-jni-1.5.6-10.so", "picocli/CommandLine.class");
            Set<String> connectorNames = names(kafkaConnector);
            assertThat(names.stream().filter(n -> n.startsWith("org/apache/flink/") && !n.endsWith("/")))
                    .as("of Flink, only the Kafka connector").isNotEmpty().allMatch(connectorNames::contains);
            assertThat(names.stream().filter(n -> NOT_IN_A_JOB_JAR.stream().anyMatch(n::startsWith)))
                    .as("what the distribution has, a broker, logging, other platforms' natives").isEmpty();
            String factories = new String(job.getInputStream(job.getEntry(
                    "META-INF/services/org.apache.flink.table.factories.Factory")).readAllBytes(), StandardCharsets.UTF_8);
            assertThat(factories).contains("io.xpuflow.connector.sql.XpuFlowModelProviderFactory",
                    "org.apache.flink.streaming.connectors.kafka.table.KafkaDynamicTableFactory");
        }
    }

    @Test
    void holdsEveryPackageOfTheSqlJar() throws IOException {
        try (ZipFile job = new ZipFile(built("xpuflow.job.jar").toFile());
             ZipFile sql = new ZipFile(built("xpuflow.sql.jar").toFile())) {
            // by package, not by class: a dependency may resolve to another version in the two modules
            Set<String> packages = packages(job);
            assertThat(packages(sql)).isNotEmpty().allMatch(packages::contains);
            // our own classes and natives, one for one
            Set<String> names = names(job);
            assertThat(names(sql).stream().filter(n -> n.startsWith("io/xpuflow/") && !n.endsWith("/")))
                    .isNotEmpty().allMatch(names::contains);
        }
    }

    /** The folders holding a class or a native library. */
    private static Set<String> packages(ZipFile jar) {
        return names(jar).stream().filter(n -> n.endsWith(".class") || n.endsWith(".so")).filter(n -> n.contains("/"))
                .filter(n -> !n.startsWith("META-INF/versions/")).map(n -> n.substring(0, n.lastIndexOf('/')))
                .collect(Collectors.toSet());
    }

    private static Set<String> names(ZipFile jar) {
        return jar.stream().map(ZipEntry::getName).collect(Collectors.toSet());
    }

    /** A jar of the build (the failsafe configuration names it in a system property). */
    private static Path built(String property) {
        Path jar = Path.of(System.getProperty(property, "(" + property + " not set)")).toAbsolutePath();
        assertThat(jar).as("%s: made by 'mvn package'; run with 'mvn verify'", property).isRegularFile();
        return jar;
    }
}
