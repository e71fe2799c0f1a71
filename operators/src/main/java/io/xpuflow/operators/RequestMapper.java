package io.xpuflow.operators;

import io.xpuflow.runtime.engine.GenerationRequest;
import java.io.Serializable;

/** Turns a stream element into a generation request; runs on the operator's task thread. */
@FunctionalInterface
public interface RequestMapper<IN> extends Serializable {
    /** @throws InvalidInputException when the element cannot be served; it becomes an error output */
    GenerationRequest toRequest(IN element) throws InvalidInputException;
}
