package io.xpuflow.connector.kafka;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeader;

/**
 * One Kafka record header as the job carries it: a record of a String and a byte array, so that
 * Flink's POJO serializer handles the arrays of them in {@link PromptRecord} and {@link OutputRecord}
 * (Kafka's own {@link Header} is an interface, which Flink would hand to Kryo).
 *
 * @param value may be null: Kafka allows a header without a value
 */
public record KafkaHeader(String key, byte[] value) {
    static final KafkaHeader[] NONE = new KafkaHeader[0];

    /** Prefixes of the headers the connector sets itself: an input header with one of them is not passed on. */
    public static final String CONNECT_ERRORS_PREFIX = "__connect.errors.";
    public static final String XPUFLOW_PREFIX = "xpuflow.";

    public KafkaHeader {
        Objects.requireNonNull(key, "header key");
    }

    public static KafkaHeader of(String key, String value) {
        return new KafkaHeader(key, value == null ? null : value.getBytes(StandardCharsets.UTF_8));
    }

    /** All of a Kafka record's headers, in order. */
    public static KafkaHeader[] of(Headers headers) {
        if (headers == null) {
            return NONE;
        }
        Header[] hs = headers.toArray();
        KafkaHeader[] out = new KafkaHeader[hs.length];
        for (int i = 0; i < hs.length; i++) {
            out[i] = new KafkaHeader(hs[i].key(), hs[i].value());
        }
        return out;
    }

    /**
     * The input headers an output record passes on: all, in order, except those named like the
     * connector's own ({@code __connect.errors.*}, {@code xpuflow.*}), so an input can neither duplicate
     * nor spoof the error code, source or model of the record written for it.
     */
    public static KafkaHeader[] propagated(KafkaHeader[] input) {
        if (input == null || input.length == 0) {
            return NONE;
        }
        return Arrays.stream(input)
                .filter(h -> !h.key.startsWith(CONNECT_ERRORS_PREFIX) && !h.key.startsWith(XPUFLOW_PREFIX))
                .toArray(KafkaHeader[]::new);
    }

    public Header toKafka() {
        return new RecordHeader(key, value);
    }

    /** Kafka headers of these, in order. */
    public static Header[] toKafka(KafkaHeader[] headers) {
        Header[] out = new Header[headers.length];
        for (int i = 0; i < headers.length; i++) {
            out[i] = headers[i].toKafka();
        }
        return out;
    }

    /** {@code a} then {@code b}. */
    static Header[] concat(Header[] a, Header[] b) {
        Header[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof KafkaHeader h && key.equals(h.key) && Arrays.equals(value, h.value);
    }

    @Override
    public int hashCode() {
        return 31 * key.hashCode() + Arrays.hashCode(value);
    }

    @Override
    public String toString() {
        return key + "=" + (value == null ? "null" : value.length + " bytes");
    }
}
