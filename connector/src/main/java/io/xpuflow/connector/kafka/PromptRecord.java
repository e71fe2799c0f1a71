package io.xpuflow.connector.kafka;

import io.xpuflow.connector.records.SourceCoordinates;
import java.util.Arrays;
import java.util.Objects;

/**
 * One input record as read from Kafka, carried through the job unparsed: the JSON is parsed by the
 * inference operator, so a record that is not JSON reaches it (and becomes an error record there)
 * instead of failing the source.
 *
 * <p>A Java record with public accessors and types Flink knows, so Flink serializes it with its POJO
 * serializer, not Kryo (checked by {@code RecordTypesTest}).
 *
 * @param key the record key, kept as the output key so results stay partitioned like their prompts; may be null
 * @param value the record value (the JSON request); null for a tombstone
 * @param headers the record's headers, in order (never null: none is an empty array), passed on to its output
 *     ({@link KafkaHeader#propagated})
 */
public record PromptRecord(String topic, int partition, long offset, byte[] key, byte[] value, KafkaHeader[] headers) {

    public PromptRecord {
        Objects.requireNonNull(topic, "topic");
        headers = headers == null ? KafkaHeader.NONE : headers;
    }

    /** A record without headers. */
    public PromptRecord(String topic, int partition, long offset, byte[] key, byte[] value) {
        this(topic, partition, offset, key, value, KafkaHeader.NONE);
    }

    public SourceCoordinates source() {
        return new SourceCoordinates(topic, partition, offset);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PromptRecord r && topic.equals(r.topic) && partition == r.partition && offset == r.offset
                && Arrays.equals(key, r.key) && Arrays.equals(value, r.value) && Arrays.equals(headers, r.headers);
    }

    @Override
    public int hashCode() {
        return Objects.hash(topic, partition, offset, Arrays.hashCode(key), Arrays.hashCode(value), Arrays.hashCode(headers));
    }

    @Override
    public String toString() {
        return "PromptRecord[" + topic + "-" + partition + "@" + offset + ", key " + (key == null ? "null" : key.length + " bytes")
                + ", value " + (value == null ? "null" : value.length + " bytes") + ", " + headers.length + " headers]";
    }
}
