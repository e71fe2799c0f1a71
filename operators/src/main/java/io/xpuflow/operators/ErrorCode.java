package io.xpuflow.operators;

import io.xpuflow.runtime.engine.GenerationException;

/** Why an input produced an error instead of a completion; the {@code error.code} of error records. */
public enum ErrorCode {
    /** The input is not valid JSON (or not valid UTF-8). */
    INVALID_JSON,
    /** A required field ({@code id}, {@code prompt} or {@code messages}) is missing. */
    MISSING_FIELD,
    /** A field has the wrong type or a value out of range. */
    INVALID_PARAM,
    /** The prompt does not fit the model's context. */
    PROMPT_TOO_LONG,
    /** The request did not finish within the operator's timeout. */
    TIMEOUT,
    /**
     * Ours, not the input's: the engine failed (for this request, e.g. non-finite logits, or as a whole) or
     * closed, its tokenizer failed, or a request mapper threw something other than
     * {@link InvalidInputException} or {@link IllegalArgumentException}.
     */
    ENGINE_ERROR,
    /**
     * The output record (a result, or an error echoing its input) would be larger than the Kafka
     * producer accepts ({@code max.request.size}); a small error record is written instead, so the
     * record cannot fail the sink and, after every restart, fail it again.
     */
    OUTPUT_TOO_LARGE;

    /** The error code for an engine rejection or failure. */
    public static ErrorCode of(GenerationException.Code code) {
        return switch (code) {
            case INVALID_PARAM -> INVALID_PARAM;
            case PROMPT_TOO_LONG -> PROMPT_TOO_LONG;
            case ENGINE_ERROR, ENGINE_CLOSED -> ENGINE_ERROR;
        };
    }
}
