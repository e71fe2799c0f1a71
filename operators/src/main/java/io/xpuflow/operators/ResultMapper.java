package io.xpuflow.operators;

import io.xpuflow.runtime.engine.GenerationResult;
import java.io.Serializable;

/** Builds the output element for an input from its result, or from the error it met. */
public interface ResultMapper<IN, OUT> extends Serializable {
    OUT onResult(IN element, GenerationResult result);

    /**
     * @param requestId the request's id when known (null when the input could not be read)
     */
    OUT onError(IN element, String requestId, ErrorCode code, String message);
}
