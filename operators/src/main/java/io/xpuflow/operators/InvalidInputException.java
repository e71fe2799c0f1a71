package io.xpuflow.operators;

/** An input element that cannot become a generation request, with the code its error record carries. */
public class InvalidInputException extends Exception {
    private final ErrorCode code;
    private final String requestId;

    /**
     * @param requestId the input's id when it could be read, else null
     */
    public InvalidInputException(ErrorCode code, String requestId, String message) {
        super(message);
        this.code = code;
        this.requestId = requestId;
    }

    public ErrorCode code() {
        return code;
    }

    public String requestId() {
        return requestId;
    }
}
