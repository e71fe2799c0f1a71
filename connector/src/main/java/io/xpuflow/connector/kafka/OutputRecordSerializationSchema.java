package io.xpuflow.connector.kafka;

import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Sends results to the output topic and errors to the dead-letter topic, or to the output topic when
 * no dead-letter topic is set. One sink writes both topics, so a result and an error of the same
 * checkpoint are committed in one Kafka transaction. The key is the input record's key: the default
 * partitioner then puts a completion in the partition its key maps to, as the prompt was.
 */
public final class OutputRecordSerializationSchema implements KafkaRecordSerializationSchema<OutputRecord> {
    private static final long serialVersionUID = 1L;

    private final String outputTopic;
    private final String deadLetterTopic;

    /**
     * @param deadLetterTopic topic of error records; null sends them to {@code outputTopic}
     */
    public OutputRecordSerializationSchema(String outputTopic, String deadLetterTopic) {
        if (outputTopic == null || outputTopic.isBlank()) {
            throw new IllegalArgumentException("an output topic is required");
        }
        if (deadLetterTopic != null && deadLetterTopic.isBlank()) {
            throw new IllegalArgumentException("the dead-letter topic must not be blank (null: errors go to the output topic)");
        }
        this.outputTopic = outputTopic;
        this.deadLetterTopic = deadLetterTopic;
    }

    /** The topic a record goes to. */
    public String topicOf(OutputRecord r) {
        return r.isError() && deadLetterTopic != null ? deadLetterTopic : outputTopic;
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(OutputRecord r, KafkaSinkContext context, Long timestamp) {
        // no timestamp: the producer stamps the time of writing; the prompt's (possibly old) time would let
        // the output topic's retention delete completions of a replayed backlog right away
        return new ProducerRecord<>(topicOf(r), r.key(), r.value());
    }
}
