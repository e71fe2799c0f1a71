package io.xpuflow.device;

import io.xpuflow.nativebind.XpuNative;
import java.util.Optional;

/** Facts about the native library of this process. */
public final class Devices {
    private Devices() {}

    /**
     * The instruction set the CPU kernels dispatch to: {@code avx512bf16} (AVX-512 with BF16 and VNNI),
     * {@code avx512}, {@code avx2} or {@code scalar}.
     */
    public static String cpuIsa() {
        return XpuNative.xpu_cpu_isa();
    }

    /**
     * Switches every CPU kernel of this process to {@code isa} (one of {@link #cpuIsa()}'s names); for
     * tests and benchmarks. The environment variable {@code XPUFLOW_ISA} does the
     * same at load time.
     *
     * @throws DeviceException if the CPU lacks that instruction set
     */
    public static void forceCpuIsa(String isa) {
        Native.check(XpuNative.xpu_cpu_force_isa(isa), "xpu_cpu_force_isa");
    }

    /**
     * Why {@code XPUFLOW_ISA} was not followed (an unknown name, or an instruction set this CPU lacks),
     * naming the kernels chosen instead; empty when it was followed or is not set.
     */
    public static Optional<String> isaWarning() {
        String w = XpuNative.xpu_cpu_isa_warning();
        return w == null || w.isEmpty() ? Optional.empty() : Optional.of(w);
    }
}
