package io.xpuflow.device;

import io.xpuflow.nativebind.XpuNative;

/**
 * One backend instance of the device ABI (the CPU today) with its fixed pool of kernel threads.
 * Models and KV caches are created on a device and must be closed before it.
 */
public final class Device implements AutoCloseable {
    private final String kind;
    private final int threads;
    private long handle;

    private Device(String kind, int threads, long handle) {
        this.kind = kind;
        this.threads = threads;
        this.handle = handle;
    }

    /**
     * Opens a device.
     *
     * @param kind {@code "cpu"}
     * @param numThreads kernel threads used inside one step; {@code <= 0} means every core this JVM may
     *     use ({@link Runtime#availableProcessors()}, which honours container CPU limits and affinity,
     *     unlike the native side's view of the machine)
     */
    public static Device open(String kind, int numThreads) {
        int threads = numThreads > 0 ? numThreads : Runtime.getRuntime().availableProcessors();
        long[] out = new long[1];
        Native.check(XpuNative.xpu_device_open(kind, threads, out), "xpu_device_open");
        return new Device(kind, threads, out[0]);
    }

    public String kind() {
        return kind;
    }

    public int threads() {
        return threads;
    }

    synchronized long handle() {
        if (handle == 0) {
            throw new IllegalStateException(kind + " device is closed");
        }
        return handle;
    }

    @Override
    public synchronized void close() {
        if (handle != 0) {
            long h = handle;
            handle = 0;
            Native.check(XpuNative.xpu_device_close(h), "xpu_device_close");
        }
    }
}
