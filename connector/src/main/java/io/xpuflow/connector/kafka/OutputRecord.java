package io.xpuflow.connector.kafka;

import java.util.Arrays;
import java.util.Objects;

/**
 * One record the inference operator emits: a result or an error, already serialized as JSON, with the
 * key of its input record. The sink sends results to the output topic and errors to the dead-letter
 * topic (or the output topic when there is none).
 *
 * <p>A Java record of Flink-known types: Flink's POJO serializer handles it, not Kryo.
 *
 * @param key the input record's key (may be null)
 * @param value the result or error JSON (UTF-8)
 * @param requestId the request's id; null for an error whose input had no readable id
 */
public record OutputRecord(Kind kind, byte[] key, byte[] value, String requestId) {

    /** Whether a record carries a completion or an error. */
    public enum Kind {
        RESULT,
        ERROR
    }

    public OutputRecord {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(value, "value");
    }

    public boolean isError() {
        return kind == Kind.ERROR;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof OutputRecord r && kind == r.kind && Arrays.equals(key, r.key) && Arrays.equals(value, r.value)
                && Objects.equals(requestId, r.requestId);
    }

    @Override
    public int hashCode() {
        return Objects.hash(kind, Arrays.hashCode(key), Arrays.hashCode(value), requestId);
    }

    @Override
    public String toString() {
        return "OutputRecord[" + kind + " " + requestId + ", " + value.length + " bytes]";
    }
}
