package io.xpuflow.connector.kafka;

import io.xpuflow.connector.records.RequestParser;
import io.xpuflow.operators.InvalidInputException;
import io.xpuflow.operators.RequestMapper;
import io.xpuflow.runtime.engine.GenerationRequest;

/** Parses a {@link PromptRecord}'s value as a JSON request (see {@link RequestParser} for the format and errors). */
public final class JsonRequestMapper implements RequestMapper<PromptRecord> {
    private static final long serialVersionUID = 1L;

    private final RequestParser parser;

    public JsonRequestMapper(RequestParser parser) {
        if (parser == null) {
            throw new IllegalArgumentException("a request parser is required");
        }
        this.parser = parser;
    }

    @Override
    public GenerationRequest toRequest(PromptRecord record) throws InvalidInputException {
        return parser.parse(record.value());
    }
}
