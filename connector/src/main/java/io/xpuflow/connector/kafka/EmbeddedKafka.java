package io.xpuflow.connector.kafka;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.test.KafkaClusterTestKit;
import org.apache.kafka.common.test.TestKitNodes;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real single-node Kafka broker (KRaft, broker and controller combined) inside this JVM, for tests
 * and the local demo: no Docker, no ZooKeeper, random localhost ports, a temporary log directory
 * deleted on {@link #close()}.
 *
 * <p>It wraps Kafka's own {@code KafkaClusterTestKit}, configured for one node: the internal topics
 * (consumer offsets, transaction state) have replication factor 1, so transactions, and with them
 * Flink's exactly-once Kafka sink, work. The test kit is a <em>provided</em> dependency of this
 * module: a program that uses this class must put {@code org.apache.kafka:kafka-test-common-runtime}
 * on its class path itself, and neither the SQL jar nor job jars for {@code flink run} carry a broker.
 *
 * <pre>{@code
 * try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
 *     kafka.createTopic("prompts", 2);
 *     kafka.produce("prompts", List.of(KeyValue.of("k1", "{\"id\":\"1\",\"prompt\":\"Once\"}")));
 *     List<ConsumerRecord<byte[], byte[]>> out = kafka.readCommitted("completions", 1, Duration.ofMinutes(1));
 * }
 * }</pre>
 */
public final class EmbeddedKafka implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedKafka.class);
    private static final Duration POLL = Duration.ofMillis(100);

    /** Largest record the broker and {@link #produce} accept: 8 MiB. */
    public static final int MAX_RECORD_BYTES = 8 << 20;

    /**
     * A record to produce.
     *
     * @param headers its headers, in order; null: none
     */
    public record KeyValue(byte[] key, byte[] value, KafkaHeader[] headers) {
        /** A record without headers. */
        public KeyValue(byte[] key, byte[] value) {
            this(key, value, null);
        }

        /** This record with these headers. */
        public KeyValue withHeaders(KafkaHeader... hs) {
            return new KeyValue(key, value, hs);
        }

        /** Both as UTF-8; either may be null. */
        public static KeyValue of(String key, String value) {
            return new KeyValue(key == null ? null : key.getBytes(StandardCharsets.UTF_8),
                    value == null ? null : value.getBytes(StandardCharsets.UTF_8));
        }
    }

    private final KafkaClusterTestKit cluster;
    private final String bootstrapServers;
    private final Admin admin;

    private EmbeddedKafka(KafkaClusterTestKit cluster) {
        this.cluster = cluster;
        this.bootstrapServers = cluster.bootstrapServers();
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        this.admin = Admin.create(p);
    }

    /**
     * Formats and starts a broker and waits until it serves.
     *
     * @throws IllegalStateException when the broker cannot start
     */
    public static EmbeddedKafka start() {
        long t0 = System.nanoTime();
        KafkaClusterTestKit cluster = null;
        try {
            cluster = new KafkaClusterTestKit.Builder(new TestKitNodes.Builder()
                    .setCombined(true).setNumBrokerNodes(1).setNumControllerNodes(1).build())
                    .setConfigProp("offsets.topic.replication.factor", "1")
                    .setConfigProp("offsets.topic.num.partitions", "1")
                    .setConfigProp("transaction.state.log.replication.factor", "1")
                    .setConfigProp("transaction.state.log.min.isr", "1")
                    .setConfigProp("transaction.state.log.num.partitions", "1")
                    .setConfigProp("share.coordinator.state.topic.replication.factor", "1")
                    .setConfigProp("share.coordinator.state.topic.min.isr", "1")
                    .setConfigProp("group.initial.rebalance.delay.ms", "0")
                    // records up to 8 MiB (Kafka's default is 1 MiB), so tests can send oversized prompts
                    .setConfigProp("message.max.bytes", Integer.toString(MAX_RECORD_BYTES))
                    .build();
            cluster.format();
            cluster.startup();
            cluster.waitForReadyBrokers();
            EmbeddedKafka kafka = new EmbeddedKafka(cluster);
            LOG.info("Embedded Kafka broker at {} ready in {} ms", kafka.bootstrapServers,
                    (System.nanoTime() - t0) / 1_000_000);
            return kafka;
        } catch (Exception e) {
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            if (cluster != null) {
                try {
                    cluster.close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw new IllegalStateException("cannot start the embedded Kafka broker: " + e.getMessage(), e);
        }
    }

    /** {@code host:port} of the broker, for {@code bootstrap.servers}. */
    public String bootstrapServers() {
        return bootstrapServers;
    }

    /** Creates a topic with replication factor 1 and waits until it exists. */
    public void createTopic(String name, int partitions) {
        try {
            admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1))).all().get();
        } catch (ExecutionException e) {
            throw new IllegalStateException("cannot create topic " + name + ": " + e.getCause().getMessage(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating topic " + name, e);
        }
    }

    /**
     * Writes the records (acks=all, idempotent) and waits until each is acknowledged. Records with a key
     * go to the partition its hash picks, as with any Kafka producer.
     *
     * @return where each record landed (partition and offset), in the order given
     */
    public List<RecordMetadata> produce(String topic, List<KeyValue> records) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(MAX_RECORD_BYTES));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<RecordMetadata>> sent = new ArrayList<>(records.size());
            for (KeyValue kv : records) {
                sent.add(producer.send(new ProducerRecord<>(topic, null, kv.key(), kv.value(),
                        kv.headers() == null ? null : java.util.Arrays.asList(KafkaHeader.toKafka(kv.headers())))));
            }
            List<RecordMetadata> written = new ArrayList<>(sent.size());
            for (Future<RecordMetadata> f : sent) {
                written.add(f.get());
            }
            return written;
        } catch (ExecutionException e) {
            throw new IllegalStateException("cannot produce to " + topic + ": " + e.getCause().getMessage(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while producing to " + topic, e);
        }
    }

    /** {@link #produce(String, List)} of UTF-8 key/value pairs. */
    public List<RecordMetadata> produceStrings(String topic, Collection<Map.Entry<String, String>> records) {
        return produce(topic, records.stream().map(e -> KeyValue.of(e.getKey(), e.getValue())).collect(Collectors.toList()));
    }

    /**
     * Reads {@code topic} from the beginning as a {@code read_committed} consumer (records of aborted
     * or still open transactions are not seen) until it has at least {@code count} records or
     * {@code timeout} has passed, and returns what it read; the caller decides whether that is enough.
     */
    public List<ConsumerRecord<byte[], byte[]>> readCommitted(String topic, int count, Duration timeout) {
        return read(topic, "read_committed", count, timeout);
    }

    /** As {@link #readCommitted}, but {@code read_uncommitted}: also records of aborted transactions. */
    public List<ConsumerRecord<byte[], byte[]>> readUncommitted(String topic, int count, Duration timeout) {
        return read(topic, "read_uncommitted", count, timeout);
    }

    /**
     * Every committed record of {@code topic} up to its last stable offset now, with no waiting for
     * more: for counting what a finished job wrote.
     *
     * @throws IllegalStateException when the records cannot be read within {@code timeout}
     */
    public List<ConsumerRecord<byte[], byte[]>> readAllCommitted(String topic, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (KafkaConsumer<byte[], byte[]> consumer = consumer("read_committed")) {
            List<TopicPartition> partitions = assignAll(consumer, topic);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions); // the last stable offsets under read_committed
            List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("could not read " + topic + " up to " + end + " within " + timeout
                            + ", read " + out.size() + " records");
                }
                consumer.poll(POLL).forEach(out::add);
            }
            return out;
        }
    }

    /** The offsets consumer group {@code group} has committed, by partition; empty when it has none. */
    public Map<TopicPartition, Long> committedOffsets(String group) {
        try {
            Map<TopicPartition, Long> out = new HashMap<>();
            admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                    .forEach((tp, o) -> {
                        if (o != null) {
                            out.put(tp, o.offset());
                        }
                    });
            return out;
        } catch (ExecutionException e) {
            throw new IllegalStateException("cannot read the offsets of group " + group + ": " + e.getCause().getMessage(),
                    e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while reading the offsets of group " + group, e);
        }
    }

    private List<ConsumerRecord<byte[], byte[]>> read(String topic, String isolation, int count, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(isolation)) {
            assignAll(consumer, topic);
            while (out.size() < count && System.nanoTime() < deadline) {
                consumer.poll(POLL).forEach(out::add);
            }
        }
        return out;
    }

    private KafkaConsumer<byte[], byte[]> consumer(String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** Assigns every partition (no consumer group: no rebalance to wait for) and seeks to the beginning. */
    private static List<TopicPartition> assignAll(KafkaConsumer<byte[], byte[]> consumer, String topic) {
        List<PartitionInfo> infos = consumer.partitionsFor(topic);
        if (infos == null || infos.isEmpty()) {
            throw new IllegalStateException("topic " + topic + " does not exist");
        }
        List<TopicPartition> partitions = infos.stream().map(i -> new TopicPartition(topic, i.partition())).toList();
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        return partitions;
    }

    @Override
    public void close() {
        admin.close(Duration.ofSeconds(5));
        try {
            cluster.close();
        } catch (Exception e) {
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            throw new IllegalStateException("cannot stop the embedded Kafka broker at " + bootstrapServers, e);
        }
        LOG.info("Embedded Kafka broker at {} stopped", bootstrapServers);
    }
}
