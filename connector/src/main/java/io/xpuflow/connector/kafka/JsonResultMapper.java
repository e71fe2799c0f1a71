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
 */
public final class JsonResultMapper implements ResultMapper<PromptRecord, OutputRecord> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(JsonResultMapper.class);

    private final ResponseWriter writer;
    private final RecordSizeLimit limit;

    public JsonResultMapper(ResponseWriter writer, RecordSizeLimit limit) {
        if (writer == null) {
            throw new IllegalArgumentException("a response writer is required");
        }
        this.writer = writer;
        this.limit = Objects.requireNonNull(limit, "record size limit");
    }

    /** With the producer's default limit. */
    public JsonResultMapper(ResponseWriter writer) {
        this(writer, RecordSizeLimit.DEFAULT);
    }

    @Override
    public OutputRecord onResult(PromptRecord in, GenerationResult result) {
        RequestParser.Echo echo = RequestParser.echo(in.value());
        byte[] value = writer.result(result, echo);
        if (limit.fits(in.key(), value, null)) {
            return OutputRecord.result(in.key(), value, result.id());
        }
        long size = RecordSizeLimit.size(in.key(), value, null);
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
        Header[] headers = DeadLetterHeaders.of(failure, requestId);
        byte[] key = in.key();
        long budget = limit.valueBudget(key, headers);
        if (budget < limit.maxRecordBytes() / 2 && key != null && key.length > limit.maxRecordBytes() / 4) {
            key = null; // a key as large as a record leaves no room for the error: the partitioner picks one
            budget = limit.valueBudget(null, headers);
        }
        byte[] value = writer.error(requestId, code, message, in.value(), in.source(), metadata,
                (int) Math.max(0, budget));
        return OutputRecord.error(key, value, requestId, failure);
    }
}
