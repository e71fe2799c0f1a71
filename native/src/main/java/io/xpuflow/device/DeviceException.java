package io.xpuflow.device;

/** A device call failed; carries the ABI operation, its {@code xpu_status} and the device's message. */
public final class DeviceException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** {@code xpu_status} codes. */
    public static final int INVALID_ARGUMENT = 1;
    public static final int IO = 2;
    public static final int OUT_OF_MEMORY = 3;
    public static final int UNSUPPORTED = 4;
    public static final int INTERNAL = 5;

    private final String operation;
    private final int status;

    public DeviceException(String operation, int status, String message) {
        super(message == null || message.isEmpty() ? operation + " failed with status " + status : message);
        this.operation = operation;
        this.status = status;
    }

    public String operation() {
        return operation;
    }

    public int status() {
        return status;
    }
}
