package io.xpuflow.nativebind;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * Raw JavaCPP binding of {@code xpuflow/xpuflow.h}, the device ABI. Every handle and buffer crosses as
 * a {@code long} address; every call returns an {@code xpu_status}. Nothing here checks arguments:
 * use the wrappers in {@code io.xpuflow.device}, which validate in Java before crossing.
 *
 * <p>This package must hold binding classes only (JavaCPP's builder scans it).
 */
@Platform(
        value = "linux-x86_64",
        include = "xpuflow/xpuflow.h",
        link = "xpuflow_kernels",
        compiler = {"!default", "cpp17", "xpuopt"},
        library = "jnixpuflow")
public final class XpuNative {
    static {
        Loader.load();
    }

    private XpuNative() {}

    public static final int XPU_API_VERSION = 3;

    public static native @Cast("const char*") String xpu_last_error();

    public static native @Cast("const char*") String xpu_cpu_isa();

    public static native int xpu_cpu_force_isa(String isa);

    public static native @Cast("const char*") String xpu_cpu_isa_warning();

    public static native int xpu_map_file(String path, @Cast("int64_t*") long[] outAddr, @Cast("int64_t*") long[] outSize);

    public static native int xpu_unmap_file(@Cast("int64_t") long addr, @Cast("int64_t") long size);

    public static native int xpu_device_open(String kind, @Cast("int64_t") long numThreads, @Cast("xpu_device**") long[] out);

    public static native int xpu_device_close(@Cast("xpu_device*") long dev);

    public static native int xpu_roofline(@Cast("xpu_device*") long dev, @Cast("int64_t") long readBytes, double[] out4);

    public static native int xpu_model_create(
            @Cast("xpu_device*") long dev, @Cast("const xpu_model_params*") long params, @Cast("xpu_model**") long[] out);

    public static native int xpu_model_set_layer(
            @Cast("xpu_model*") long model, @Cast("int64_t") long layer, @Cast("const xpu_layer_params*") long params);

    public static native int xpu_model_set_tensor(
            @Cast("xpu_model*") long model,
            @Cast("int64_t") long role,
            @Cast("int64_t") long layer,
            @Cast("int64_t") long expert,
            @Cast("const void*") long data,
            @Cast("int64_t") long dtype,
            @Cast("int64_t") long rows,
            @Cast("int64_t") long cols,
            @Cast("const float*") long scale,
            @Cast("int64_t") long scaleRows,
            @Cast("int64_t") long scaleCols,
            @Cast("int64_t") long blockRows,
            @Cast("int64_t") long blockCols);

    public static native int xpu_model_set_rope(
            @Cast("xpu_model*") long model, @Cast("int64_t") long layer, float[] invFreq, @Cast("int64_t") long n);

    public static native int xpu_model_finalize(@Cast("xpu_model*") long model);

    public static native int xpu_model_free(@Cast("xpu_model*") long model);

    public static native int xpu_model_weight_bytes(@Cast("xpu_model*") long model, @Cast("int64_t*") long[] outBytes);

    public static native int xpu_model_set_taps(
            @Cast("xpu_model*") long model, @Cast("float*") long buf, @Cast("int64_t") long maxRows);

    public static native int xpu_model_trace(@Cast("xpu_model*") long model, @Cast("int64_t") long capacity);

    public static native int xpu_model_trace_read(
            @Cast("xpu_model*") long model,
            @Cast("int64_t*") long[] out,
            @Cast("int64_t") long maxEvents,
            @Cast("int64_t*") long[] outCount,
            @Cast("int64_t*") long[] outDropped);

    public static native int xpu_kv_create(
            @Cast("xpu_model*") long model,
            @Cast("int64_t") long blockSize,
            @Cast("const int64_t*") long[] numBlocksPerGroup,
            @Cast("xpu_kv_cache**") long[] out);

    public static native int xpu_kv_block_bytes(
            @Cast("xpu_model*") long model, @Cast("int64_t") long group, @Cast("int64_t") long blockSize,
            @Cast("int64_t*") long[] outBytes);

    public static native int xpu_kv_free(@Cast("xpu_kv_cache*") long kv);

    public static native int xpu_step(
            @Cast("xpu_model*") long model, @Cast("xpu_kv_cache*") long kv, @Cast("const xpu_batch*") long batch);

    public static native @Cast("int64_t") long xpu_abi_struct_size(String name);
}
