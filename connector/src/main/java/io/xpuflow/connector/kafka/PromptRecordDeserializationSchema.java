package io.xpuflow.connector.kafka;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * Wraps each Kafka record into a {@link PromptRecord} without looking at its bytes. Parsing happens in
 * the inference operator, where a bad record becomes an error record with its coordinates; a
 * deserializer that threw here would fail (and endlessly restart) the job on the first bad record.
 */
public final class PromptRecordDeserializationSchema implements KafkaRecordDeserializationSchema<PromptRecord> {
    private static final long serialVersionUID = 1L;

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<PromptRecord> out) {
        out.collect(new PromptRecord(record.topic(), record.partition(), record.offset(), record.key(), record.value(),
                KafkaHeader.of(record.headers())));
    }

    @Override
    public TypeInformation<PromptRecord> getProducedType() {
        return TypeInformation.of(PromptRecord.class);
    }
}
