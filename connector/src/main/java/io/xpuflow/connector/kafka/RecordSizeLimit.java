package io.xpuflow.connector.kafka;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.header.Header;

/**
 * The largest record the sink's Kafka producer sends, and the size a record has in the producer's eyes.
 *
 * <p>{@code KafkaProducer.send} refuses a record whose estimated size is over {@code max.request.size}
 * (or {@code buffer.memory}) with a {@code RecordTooLargeException}; in Flink's transactional Kafka sink
 * that fails the job, the restart replays the same input, and the same record fails it again, forever.
 * So every output record is checked against this limit before it reaches the producer. The size is the
 * producer's own estimate ({@code DefaultRecordBatch.estimateBatchSizeUpperBound}, computed here with the
 * same formula rather than through Kafka's internal classes): a batch header, the record overhead,
 * key, value and headers, each length as a varint.
 *
 * <p>The broker and the topic have limits of their own ({@code message.max.bytes},
 * {@code max.message.bytes}, about 1 MiB by default): keep {@code max.request.size} at or below them.
 *
 * @param maxRecordBytes the largest record the producer accepts, as it counts
 */
public record RecordSizeLimit(int maxRecordBytes) implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Kafka's default {@code max.request.size}: 1 MiB. */
    public static final int DEFAULT_MAX_REQUEST_SIZE = 1024 * 1024;

    /** Kafka's default {@code buffer.memory}: 32 MiB. */
    public static final long DEFAULT_BUFFER_MEMORY = 32L * 1024 * 1024;

    /** The producer's default limit. */
    public static final RecordSizeLimit DEFAULT = new RecordSizeLimit(DEFAULT_MAX_REQUEST_SIZE);

    // DefaultRecordBatch.RECORD_BATCH_OVERHEAD and DefaultRecord.MAX_RECORD_OVERHEAD of kafka-clients 4.x
    private static final int BATCH_OVERHEAD = 61;
    private static final int RECORD_OVERHEAD = 21;

    public RecordSizeLimit {
        if (maxRecordBytes < 1024) {
            throw new IllegalArgumentException("the record size limit must be at least 1024 bytes, was " + maxRecordBytes);
        }
    }

    /**
     * The limit of a producer with these properties: {@code max.request.size}, or {@code buffer.memory}
     * when that is smaller (the producer refuses a record larger than its buffer too); Kafka's defaults for
     * what is not set.
     *
     * @throws IllegalArgumentException naming the property when it is not a number
     */
    public static RecordSizeLimit ofProducer(Map<String, String> properties) {
        long maxRequest = number(properties, ProducerConfig.MAX_REQUEST_SIZE_CONFIG, DEFAULT_MAX_REQUEST_SIZE);
        long buffer = number(properties, ProducerConfig.BUFFER_MEMORY_CONFIG, DEFAULT_BUFFER_MEMORY);
        return new RecordSizeLimit((int) Math.min(Integer.MAX_VALUE, Math.min(maxRequest, buffer)));
    }

    private static long number(Map<String, String> properties, String key, long dflt) {
        String v = properties.get(key);
        if (v == null) {
            return dflt;
        }
        try {
            return Long.parseLong(v.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("producer property " + key + " must be a number of bytes, was '" + v + "'", e);
        }
    }

    /** Whether the producer sends this record. */
    public boolean fits(byte[] key, byte[] value, Header[] headers) {
        return size(key, value, headers) <= maxRecordBytes;
    }

    /** The most bytes a value may have to go with this key and these headers (negative: not even an empty one). */
    public long valueBudget(byte[] key, Header[] headers) {
        // the value's length varint grows with the value: count it at its widest (5 bytes) instead of 1
        return maxRecordBytes - size(key, new byte[0], headers) - 4;
    }

    /** The record's size as the producer estimates it before sending (an upper bound of its size in a batch). */
    public static long size(byte[] key, byte[] value, Header[] headers) {
        long n = BATCH_OVERHEAD + RECORD_OVERHEAD;
        n += key == null ? varintSize(-1) : varintSize(key.length) + key.length;
        n += value == null ? varintSize(-1) : varintSize(value.length) + value.length;
        Header[] hs = headers == null ? new Header[0] : headers;
        n += varintSize(hs.length);
        for (Header h : hs) {
            int keyBytes = h.key().getBytes(StandardCharsets.UTF_8).length;
            n += varintSize(keyBytes) + keyBytes;
            n += h.value() == null ? varintSize(-1) : varintSize(h.value().length) + h.value().length;
        }
        return n;
    }

    /** Bytes of a zig-zag varint, as Kafka's {@code ByteUtils.sizeOfVarint}. */
    static int varintSize(int v) {
        int zigzag = (v << 1) ^ (v >> 31);
        int bytes = 1;
        while ((zigzag & 0xffffff80) != 0) {
            bytes++;
            zigzag >>>= 7;
        }
        return bytes;
    }
}
