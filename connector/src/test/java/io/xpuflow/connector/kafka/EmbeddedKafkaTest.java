package io.xpuflow.connector.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(EmbeddedKafkaExtension.class)
class EmbeddedKafkaTest {
    static final Duration WAIT = Duration.ofSeconds(60);

    static String text(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    @Test
    void producedRecordsAreReadBackWithKeysAndLargeValues(EmbeddedKafka kafka) {
        kafka.createTopic("ek-plain", 2);
        String large = "x".repeat(2 << 20); // above Kafka's default 1 MiB record limit
        kafka.produceStrings("ek-plain", List.of(Map.entry("a", "1"), Map.entry("b", "2"), Map.entry("c", large)));
        kafka.produce("ek-plain", List.of(EmbeddedKafka.KeyValue.of(null, null)));
        List<ConsumerRecord<byte[], byte[]>> read = kafka.readCommitted("ek-plain", 4, WAIT);
        assertThat(read).hasSize(4);
        assertThat(read).extracting(r -> text(r.key()), r -> text(r.value()) == null ? null : text(r.value()).length())
                .containsExactlyInAnyOrder(org.assertj.core.groups.Tuple.tuple("a", 1), org.assertj.core.groups.Tuple.tuple("b", 1),
                        org.assertj.core.groups.Tuple.tuple("c", large.length()), org.assertj.core.groups.Tuple.tuple(null, null));
        // keyed records land where the producer's default partitioner puts their key
        assertThat(read.stream().filter(r -> r.key() != null))
                .allSatisfy(r -> assertThat(r.partition()).isEqualTo(BuiltInPartitioner.partitionForKey(r.key(), 2)));
    }

    @Test
    void readCommittedSkipsAbortedTransactions(EmbeddedKafka kafka) {
        kafka.createTopic("ek-tx", 1);
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "ek-tx-producer");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("ek-tx", "k", "aborted"));
            producer.flush();
            producer.abortTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("ek-tx", "k", "committed"));
            producer.commitTransaction();
        }
        assertThat(kafka.readCommitted("ek-tx", 1, WAIT)).extracting(r -> text(r.value())).containsExactly("committed");
        assertThat(kafka.readAllCommitted("ek-tx", WAIT)).extracting(r -> text(r.value())).containsExactly("committed");
        assertThat(kafka.readUncommitted("ek-tx", 2, WAIT)).extracting(r -> text(r.value()))
                .containsExactly("aborted", "committed");
    }

    @Test
    void readAllCommittedOfAnEmptyTopicReturnsAtOnce(EmbeddedKafka kafka) {
        kafka.createTopic("ek-empty", 3);
        assertThat(kafka.readAllCommitted("ek-empty", WAIT)).isEmpty();
    }

    @Test
    void clearErrors(EmbeddedKafka kafka) {
        kafka.createTopic("ek-dup", 1);
        assertThatThrownBy(() -> kafka.createTopic("ek-dup", 1)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("cannot create topic ek-dup");
        assertThatThrownBy(() -> kafka.readAllCommitted("ek-missing", WAIT)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("topic ek-missing does not exist");
    }
}
