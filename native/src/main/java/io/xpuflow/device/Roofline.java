package io.xpuflow.device;

import io.xpuflow.nativebind.XpuNative;

/**
 * This machine's limits, measured with a device's kernel threads: what every benchmark states its
 * efficiency against (decode against the read bandwidth, prefill against the arithmetic peak of the
 * weight format's instructions).
 *
 * @param readGBps read bandwidth, GB/s (10^9 bytes), streaming a buffer far larger than the caches
 * @param fp32Gflops FP32 fused multiply-add peak, GFLOP/s
 * @param bf16Gflops BF16 {@code vdpbf16ps} peak, GFLOP/s (0 without AVX-512 BF16)
 * @param int8Gops INT8 {@code vpdpbusd} peak, GOP/s (0 without AVX-512 VNNI)
 * @param threads the kernel threads that ran it
 */
public record Roofline(double readGBps, double fp32Gflops, double bf16Gflops, double int8Gops, int threads) {
    /** Bytes streamed by the bandwidth probe unless asked otherwise: far larger than any cache here. */
    public static final long DEFAULT_READ_BYTES = 512L << 20;

    /** Runs the probe on {@code device} (about a second; the device must be otherwise idle). */
    public static Roofline measure(Device device, long readBytes) {
        double[] out = new double[4];
        Native.check(XpuNative.xpu_roofline(device.handle(), readBytes, out), "xpu_roofline");
        return new Roofline(out[0], out[1], out[2], out[3], device.threads());
    }

    /** The arithmetic peak of the instructions a weight format's kernels use, GFLOP/s (INT8: GOP/s). */
    public double peakFor(WeightFormat format) {
        return switch (format) {
            case EXACT -> fp32Gflops;
            case BF16 -> bf16Gflops > 0 ? bf16Gflops : fp32Gflops;
            case INT8 -> int8Gops > 0 ? int8Gops : fp32Gflops;
        };
    }
}
