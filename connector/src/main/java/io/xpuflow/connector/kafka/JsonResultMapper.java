package io.xpuflow.connector.kafka;

import io.xpuflow.connector.records.RequestParser;
import io.xpuflow.connector.records.ResponseWriter;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.ResultMapper;
import io.xpuflow.runtime.engine.GenerationResult;
import java.util.Objects;
import org.apache.kafka.common.header.Header;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns a generation result or error into an {@link OutputRecord} with the input's key, written by a
 * {@link ResponseWriter}. The request's {@code metadata} and {@code return_token_ids} are read again from
 * the input record here ({@link RequestParser#echo}; the element is all a mapper gets), which costs a
 * streaming scan of the input per output.
 *
 * <p>Every record fits the sink's {@link RecordSizeLimit}, so no request can make the sink fail: a result
 * too large for it (long generations with many logprobs, say) becomes an
 * {@link ErrorCode#OUTPUT_TOO_LARGE} error record, and an error record echoes as much of the input as fits
 * ({@link ResponseWriter#error(String, ErrorCode, String, byte[], io.xpuflow.connector.records.SourceCoordinates,
 * String, int)}).
 *
 * <p>Headers: every record passes on its input's headers, in order ({@link KafkaHeader#propagated}: not
 * those named like the connector's own), a result then adds {@value #MODEL_HEADER} with the model's name
 * (also its {@code model} field). They count towards the limit; when they leave no room, a result becomes an
 * {@code OUTPUT_TOO_LARGE} error and an error goes without them, so huge headers cannot fail the sink either.
 */
public final class JsonResultMapper implements ResultMapper<PromptRecord, OutputRecord> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(JsonResultMapper.class);

    /** Header of a result naming the model that generated it. */
    public static final String MODEL_HEADER = "xpuflow.model";

    private final ResponseWriter writer;
    private final RecordSizeLimit limit;
    private final String model;

    /**
     * @param model the model's name for results' {@code model} field and {@value #MODEL_HEADER} header; null: neither
     */
    public JsonResultMapper(ResponseWriter writer, RecordSizeLimit limit, String model) {
        if (writer == null) {
            throw new IllegalArgumentException("a response writer is required");
        }
        this.writer = writer;
        this.limit = Objects.requireNonNull(limit, "record size limit");
        this.model = model;
    }

    /** Without a model name. */
    public JsonResultMapper(ResponseWriter writer, RecordSizeLimit limit) {
        this(writer, limit, null);
    }

    /** With the producer's default limit, without a model name. */
    public JsonResultMapper(ResponseWriter writer) {
        this(writer, RecordSizeLimit.DEFAULT);
    }

    /** The model name results carry; null when none. */
    public String model() {
        return model;
    }

    @Override
    public OutputRecord onResult(PromptRecord in, GenerationResult result) {
        RequestParser.Echo echo = RequestParser.echo(in.value());
        byte[] value = writer.result(result, echo, model);
        KafkaHeader[] headers = KafkaHeader.propagated(in.headers());
        if (model != null) {
            headers = java.util.Arrays.copyOf(headers, headers.length + 1);
            headers[headers.length - 1] = KafkaHeader.of(MODEL_HEADER, model);
        }
        Header[] kafkaHeaders = KafkaHeader.toKafka(headers);
        if (limit.fits(in.key(), value, kafkaHeaders)) {
            return OutputRecord.result(in.key(), value, result.id(), headers);
        }
        long size = RecordSizeLimit.size(in.key(), value, kafkaHeaders);
        LOG.warn("Result of request {} is {} bytes, more than the producer's limit of {}: {} written instead",
                result.id(), size, limit.maxRecordBytes(), ErrorCode.OUTPUT_TOO_LARGE);
        return error(in, result.id(), ErrorCode.OUTPUT_TOO_LARGE, "the result is " + size
                + " bytes as a Kafka record, more than the producer's limit of " + limit.maxRecordBytes()
                + " (max.request.size); ask for fewer tokens or logprobs", echo.rawMetadata());
    }

    @Override
    public OutputRecord onError(PromptRecord in, String requestId, ErrorCode code, String message) {
        String metadata = code == ErrorCode.INVALID_JSON ? null : RequestParser.echo(in.value()).rawMetadata();
        return error(in, requestId, code, message, metadata);
    }

    private OutputRecord error(PromptRecord in, String requestId, ErrorCode code, String message, String metadata) {
        OutputRecord.Failure failure = new OutputRecord.Failure(code, message, in.source());
        KafkaHeader[] passed = KafkaHeader.propagated(in.headers());
        Header[] deadLetter = DeadLetterHeaders.of(failure, requestId);
        Header[] headers = KafkaHeader.concat(KafkaHeader.toKafka(passed), deadLetter);
        if (passed.length > 0 && RecordSizeLimit.size(null, null, headers) > limit.maxRecordBytes() / 4) {
            // input headers that take a quarter of the record would crowd out the error (or not fit at all):
            // the dead letter goes without them, with its own headers and the echoed input to find the request by
            LOG.warn("Error record of request {} goes without its input's {} headers: they are {} bytes", requestId,
                    passed.length, RecordSizeLimit.size(null, null, headers));
            passed = KafkaHeader.NONE;
            headers = deadLetter;
        }
        byte[] key = in.key();
        long budget = limit.valueBudget(key, headers);
        if (budget < limit.maxRecordBytes() / 2 && key != null && key.length > limit.maxRecordBytes() / 4) {
            key = null; // a key as large as a record leaves no room for the error: the partitioner picks one
            budget = limit.valueBudget(null, headers);
        }
        byte[] value = writer.error(requestId, code, message, in.value(), in.source(), metadata,
                (int) Math.max(0, budget));
        return OutputRecord.error(key, value, requestId, failure, passed);
    }
}
