package io.xpuflow.connector.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.AbstractRecords;
import org.apache.kafka.common.record.CompressionType;
import org.apache.kafka.common.record.RecordBatch;
import org.junit.jupiter.api.Test;

class RecordSizeLimitTest {

    /** What KafkaProducer.send compares with max.request.size (kafka-clients' own estimate). */
    static long kafkaEstimate(byte[] key, byte[] value, Header[] headers) {
        return AbstractRecords.estimateSizeInBytesUpperBound(RecordBatch.CURRENT_MAGIC_VALUE, CompressionType.NONE,
                key, value, headers);
    }

    @Test
    void sizeIsTheProducersOwnEstimate() {
        Header[] dlq = {new RecordHeader("__connect.errors.topic", "prompts".getBytes(StandardCharsets.UTF_8)),
                new RecordHeader("__connect.errors.offset", "123456789".getBytes(StandardCharsets.UTF_8)),
                new RecordHeader("empty", null), new RecordHeader("é", new byte[300])};
        for (byte[] key : new byte[][] {null, new byte[0], new byte[1], new byte[63], new byte[64], new byte[200_000]}) {
            for (byte[] value : new byte[][] {null, new byte[0], new byte[127], new byte[8191], new byte[8192],
                    new byte[1 << 20], new byte[3 << 20]}) {
                for (Header[] headers : new Header[][] {new Header[0], dlq}) {
                    assertThat(RecordSizeLimit.size(key, value, headers))
                            .as("key %s, value %s, %d headers", key == null ? null : key.length,
                                    value == null ? null : value.length, headers.length)
                            .isEqualTo(kafkaEstimate(key, value, headers));
                }
            }
        }
        assertThat(RecordSizeLimit.size(null, new byte[10], null)).isEqualTo(kafkaEstimate(null, new byte[10], new Header[0]));
    }

    @Test
    void aValueOfTheBudgetFits() {
        RecordSizeLimit limit = new RecordSizeLimit(100_000);
        byte[] key = new byte[500];
        Header[] headers = {new RecordHeader("h", new byte[1000])};
        long budget = limit.valueBudget(key, headers);
        assertThat(limit.fits(key, new byte[(int) budget], headers)).isTrue();
        assertThat(budget).isGreaterThan(100_000 - 500 - 1000 - 120);
        assertThat(limit.fits(key, new byte[(int) budget + 5], headers)).isFalse();
    }

    @Test
    void theLimitIsTheProducersMaxRequestSizeOrItsBufferWhenSmaller() {
        assertThat(RecordSizeLimit.ofProducer(Map.of())).isEqualTo(new RecordSizeLimit(1 << 20));
        assertThat(RecordSizeLimit.ofProducer(Map.of("max.request.size", "5000000")).maxRecordBytes()).isEqualTo(5_000_000);
        assertThat(RecordSizeLimit.ofProducer(Map.of("max.request.size", "5000000", "buffer.memory", "4000000"))
                .maxRecordBytes()).isEqualTo(4_000_000);
        assertThat(catchThrowableOfType(IllegalArgumentException.class,
                () -> RecordSizeLimit.ofProducer(Map.of("max.request.size", "1mb"))))
                .hasMessage("producer property max.request.size must be a number of bytes, was '1mb'");
        assertThat(catchThrowableOfType(IllegalArgumentException.class, () -> new RecordSizeLimit(100)))
                .hasMessageContaining("at least 1024");
    }
}
