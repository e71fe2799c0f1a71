package io.xpuflow.connector.kafka;

import io.xpuflow.connector.records.SourceCoordinates;
import io.xpuflow.operators.ErrorCode;
import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * One record the inference operator emits: a result or an error, already serialized as JSON, with the
 * key of its input record. The sink sends results to the output topic and errors to the dead-letter
 * topic (or the output topic when there is none), an error with its {@link DeadLetterHeaders}.
 *
 * <p>A Java record of Flink-known types: Flink's POJO serializer handles it, not Kryo.
 *
 * @param key the input record's key (may be null)
 * @param value the result or error JSON (UTF-8)
 * @param requestId the request's id; null for an error whose input had no readable id
 * @param failure what went wrong, for an error's headers; null for a result (and allowed to be null for an
 *     error written by someone else's mapper: it then goes without dead-letter headers)
 * @param headers the headers written first, in order: the input's propagated headers and, on a result,
 *     {@code xpuflow.model}; an error's {@link DeadLetterHeaders} follow them. Never null (none: empty array)
 */
public record OutputRecord(Kind kind, byte[] key, byte[] value, String requestId, Failure failure, KafkaHeader[] headers) {

    /** Whether a record carries a completion or an error. */
    public enum Kind {
        RESULT,
        ERROR
    }

    /**
     * The error of an error record, for its Kafka headers.
     *
     * @param source where the input was read; null when unknown
     */
    public record Failure(ErrorCode code, String message, SourceCoordinates source) implements Serializable {
        private static final long serialVersionUID = 1L;

        public Failure {
            Objects.requireNonNull(code, "code");
        }
    }

    public OutputRecord {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(value, "value");
        if (kind == Kind.RESULT && failure != null) {
            throw new IllegalArgumentException("a result record has no failure, got " + failure);
        }
        headers = headers == null ? KafkaHeader.NONE : headers;
    }

    /** A record without headers of its own. */
    public OutputRecord(Kind kind, byte[] key, byte[] value, String requestId, Failure failure) {
        this(kind, key, value, requestId, failure, KafkaHeader.NONE);
    }

    /** A record without failure details (an error then goes without dead-letter headers) nor headers of its own. */
    public OutputRecord(Kind kind, byte[] key, byte[] value, String requestId) {
        this(kind, key, value, requestId, null);
    }

    public static OutputRecord result(byte[] key, byte[] value, String requestId) {
        return new OutputRecord(Kind.RESULT, key, value, requestId, null);
    }

    public static OutputRecord result(byte[] key, byte[] value, String requestId, KafkaHeader[] headers) {
        return new OutputRecord(Kind.RESULT, key, value, requestId, null, headers);
    }

    public static OutputRecord error(byte[] key, byte[] value, String requestId, Failure failure) {
        return error(key, value, requestId, failure, KafkaHeader.NONE);
    }

    public static OutputRecord error(byte[] key, byte[] value, String requestId, Failure failure, KafkaHeader[] headers) {
        return new OutputRecord(Kind.ERROR, key, value, requestId, Objects.requireNonNull(failure, "failure"), headers);
    }

    /** All headers of the Kafka record: {@link #headers()}, then an error's {@link DeadLetterHeaders}. */
    public org.apache.kafka.common.header.Header[] kafkaHeaders() {
        org.apache.kafka.common.header.Header[] own = KafkaHeader.toKafka(headers);
        return failure == null ? own : KafkaHeader.concat(own, DeadLetterHeaders.of(failure, requestId));
    }

    public boolean isError() {
        return kind == Kind.ERROR;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof OutputRecord r && kind == r.kind && Arrays.equals(key, r.key) && Arrays.equals(value, r.value)
                && Objects.equals(requestId, r.requestId) && Objects.equals(failure, r.failure) && Arrays.equals(headers, r.headers);
    }

    @Override
    public int hashCode() {
        return Objects.hash(kind, Arrays.hashCode(key), Arrays.hashCode(value), requestId, failure, Arrays.hashCode(headers));
    }

    @Override
    public String toString() {
        return "OutputRecord[" + kind + " " + requestId + (failure == null ? "" : " " + failure.code()) + ", "
                + value.length + " bytes]";
    }
}
