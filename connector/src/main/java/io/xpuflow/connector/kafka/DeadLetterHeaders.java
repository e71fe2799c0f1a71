package io.xpuflow.connector.kafka;

import io.xpuflow.connector.records.SourceCoordinates;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;

/**
 * Kafka headers of an error record, named as Kafka Connect names those of its dead-letter records
 * ({@code errors.deadletterqueue.context.headers.enable}), so tools written for Connect's dead letters
 * find the source record: {@code __connect.errors.topic}, {@code .partition}, {@code .offset}, and the
 * message in {@code __connect.errors.exception.message}; the error code and request id, which Connect has
 * no name for, in {@code xpuflow.error.code} and {@code xpuflow.request.id}. Values are UTF-8 text, numbers
 * in decimal, as Connect writes them. Headers that have no value (no source, no id) are left out.
 */
public final class DeadLetterHeaders {
    public static final String TOPIC = "__connect.errors.topic";
    public static final String PARTITION = "__connect.errors.partition";
    public static final String OFFSET = "__connect.errors.offset";
    public static final String EXCEPTION_MESSAGE = "__connect.errors.exception.message";
    public static final String ERROR_CODE = "xpuflow.error.code";
    public static final String REQUEST_ID = "xpuflow.request.id";

    /** Longest message in a header, in UTF-8 bytes (the record's value has it whole). */
    public static final int MAX_MESSAGE_BYTES = 4096;

    private DeadLetterHeaders() {}

    /** The headers of an error record. */
    public static Header[] of(OutputRecord.Failure failure, String requestId) {
        List<Header> hs = new ArrayList<>(6);
        SourceCoordinates s = failure.source();
        if (s != null) {
            hs.add(header(TOPIC, s.topic()));
            hs.add(header(PARTITION, Integer.toString(s.partition())));
            hs.add(header(OFFSET, Long.toString(s.offset())));
        }
        if (failure.message() != null) {
            hs.add(new RecordHeader(EXCEPTION_MESSAGE, cut(failure.message().getBytes(StandardCharsets.UTF_8))));
        }
        hs.add(header(ERROR_CODE, failure.code().name()));
        if (requestId != null) {
            hs.add(header(REQUEST_ID, requestId));
        }
        return hs.toArray(new Header[0]);
    }

    private static Header header(String key, String value) {
        return new RecordHeader(key, value.getBytes(StandardCharsets.UTF_8));
    }

    /** At most {@link #MAX_MESSAGE_BYTES}, not ending inside a UTF-8 sequence. */
    private static byte[] cut(byte[] b) {
        if (b.length <= MAX_MESSAGE_BYTES) {
            return b;
        }
        int n = MAX_MESSAGE_BYTES;
        while (n > 0 && (b[n] & 0xC0) == 0x80) {
            n--;
        }
        return java.util.Arrays.copyOf(b, n);
    }
}
