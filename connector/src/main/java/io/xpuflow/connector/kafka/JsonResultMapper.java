package io.xpuflow.connector.kafka;

import io.xpuflow.connector.records.RequestParser;
import io.xpuflow.connector.records.ResponseWriter;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.ResultMapper;
import io.xpuflow.runtime.engine.GenerationResult;

/**
 * Turns a generation result or error into an {@link OutputRecord} with the input's key, written by a
 * {@link ResponseWriter}. The request's {@code metadata} and {@code return_token_ids} are read again from
 * the input record here ({@link RequestParser#echo}; the element is all a mapper gets), which costs a
 * streaming scan of the input per output.
 */
public final class JsonResultMapper implements ResultMapper<PromptRecord, OutputRecord> {
    private static final long serialVersionUID = 1L;

    private final ResponseWriter writer;

    public JsonResultMapper(ResponseWriter writer) {
        if (writer == null) {
            throw new IllegalArgumentException("a response writer is required");
        }
        this.writer = writer;
    }

    @Override
    public OutputRecord onResult(PromptRecord in, GenerationResult result) {
        return new OutputRecord(OutputRecord.Kind.RESULT, in.key(), writer.result(result, RequestParser.echo(in.value())),
                result.id());
    }

    @Override
    public OutputRecord onError(PromptRecord in, String requestId, ErrorCode code, String message) {
        String metadata = code == ErrorCode.INVALID_JSON ? null : RequestParser.echo(in.value()).rawMetadata();
        byte[] value = writer.error(requestId, code, message, in.value(), in.source(), metadata);
        return new OutputRecord(OutputRecord.Kind.ERROR, in.key(), value, requestId);
    }
}
