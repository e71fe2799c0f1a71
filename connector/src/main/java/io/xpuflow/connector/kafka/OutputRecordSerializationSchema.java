package io.xpuflow.connector.kafka;

import io.xpuflow.connector.records.RequestParser;
import io.xpuflow.connector.records.ResponseWriter;
import io.xpuflow.operators.ErrorCode;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sends results to the output topic and errors to the dead-letter topic, or to the output topic when
 * no dead-letter topic is set. One sink writes both topics, so a result and an error of the same
 * checkpoint are committed in one Kafka transaction. The key is the input record's key: the default
 * partitioner then puts a completion in the partition its key maps to, as the prompt was. A record goes
 * with its {@link OutputRecord#headers()} (the input's, passed on), an error then with its {@link DeadLetterHeaders}.
 *
 * <p>Last line of defence against poison pills: a record larger than the producer accepts
 * ({@link RecordSizeLimit}) would fail the transactional sink, and the restart would replay it and fail
 * again. {@link JsonResultMapper} already keeps its records within the limit; any record that still
 * arrives too large (from a mapper of one's own, or with a limit set differently) is replaced here by a
 * small {@link ErrorCode#OUTPUT_TOO_LARGE} error record to the dead-letter topic, logged as a warning,
 * without the record's own headers (they count towards the size, and may be what made it too large).
 */
public final class OutputRecordSerializationSchema implements KafkaRecordSerializationSchema<OutputRecord> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(OutputRecordSerializationSchema.class);

    private final String outputTopic;
    private final String deadLetterTopic;
    private final RecordSizeLimit limit;

    /**
     * @param deadLetterTopic topic of error records; null sends them to {@code outputTopic}
     * @param limit the largest record the sink's producer sends
     */
    public OutputRecordSerializationSchema(String outputTopic, String deadLetterTopic, RecordSizeLimit limit) {
        if (outputTopic == null || outputTopic.isBlank()) {
            throw new IllegalArgumentException("an output topic is required");
        }
        if (deadLetterTopic != null && deadLetterTopic.isBlank()) {
            throw new IllegalArgumentException("the dead-letter topic must not be blank (null: errors go to the output topic)");
        }
        this.outputTopic = outputTopic;
        this.deadLetterTopic = deadLetterTopic;
        this.limit = Objects.requireNonNull(limit, "record size limit");
    }

    /** With the producer's default limit ({@link RecordSizeLimit#DEFAULT}). */
    public OutputRecordSerializationSchema(String outputTopic, String deadLetterTopic) {
        this(outputTopic, deadLetterTopic, RecordSizeLimit.DEFAULT);
    }

    /** The topic a record goes to. */
    public String topicOf(OutputRecord r) {
        return r.isError() && deadLetterTopic != null ? deadLetterTopic : outputTopic;
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(OutputRecord r, KafkaSinkContext context, Long timestamp) {
        // the headers count: a record with huge propagated headers would fail the producer as surely as a huge value
        Header[] headers = r.kafkaHeaders();
        long size = RecordSizeLimit.size(r.key(), r.value(), headers);
        if (size <= limit.maxRecordBytes()) {
            // no timestamp: the producer stamps the time of writing; the prompt's (possibly old) time would let
            // the output topic's retention delete completions of a replayed backlog right away
            return new ProducerRecord<>(topicOf(r), null, null, r.key(), r.value(), Arrays.asList(headers));
        }
        return tooLarge(r, size);
    }

    private ProducerRecord<byte[], byte[]> tooLarge(OutputRecord r, long size) {
        var source = r.failure() == null ? null : r.failure().source();
        String what = r.isError() ? "the error record" : "the result";
        byte[] value = ResponseWriter.outputTooLarge(r.requestId(), what, size, limit.maxRecordBytes(), source);
        // a long id (not one of ours: the request parser caps them) stays out of the small record and its header
        String id = r.requestId() != null && r.requestId().getBytes(StandardCharsets.UTF_8).length <= RequestParser.MAX_ID_BYTES
                ? r.requestId() : null;
        OutputRecord.Failure failure = new OutputRecord.Failure(ErrorCode.OUTPUT_TOO_LARGE,
                what + " is " + size + " bytes as a Kafka record, more than the producer's limit of "
                        + limit.maxRecordBytes(), source);
        // without the propagated headers: they may be what made the record too large
        OutputRecord replacement = OutputRecord.error(r.key(), value, id, failure);
        Header[] headers = replacement.kafkaHeaders();
        byte[] key = r.key();
        if (!limit.fits(key, value, headers)) {
            key = null; // a key as large as a record: the partition then comes from the partitioner alone
        }
        LOG.warn("Output record of request {} is {} bytes, more than the producer's limit of {}: {} written instead",
                id, size, limit.maxRecordBytes(), ErrorCode.OUTPUT_TOO_LARGE);
        return new ProducerRecord<>(topicOf(replacement), null, null, key, value, Arrays.asList(headers));
    }
}
