package io.xpuflow.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** What the native library reports about the machine: the roofline probe and the kernel choice. */
class MachineFactsTest {

    @Test
    void rooflineMeasuresEveryLimitThisCpuHas() {
        try (Device device = Device.open("cpu", 2)) {
            Roofline r = Roofline.measure(device, 64L << 20);
            assertThat(r.threads()).isEqualTo(2);
            assertThat(r.readGBps()).isPositive();
            assertThat(r.fp32Gflops()).isPositive();
            boolean vnni = Devices.cpuIsa().equals("avx512bf16");
            assertThat(r.bf16Gflops() > 0).as("BF16 peak measured exactly when the CPU has vdpbf16ps").isEqualTo(vnni);
            assertThat(r.int8Gops() > 0).as("INT8 peak measured exactly when the CPU has vpdpbusd").isEqualTo(vnni);
            assertThat(r.peakFor(WeightFormat.EXACT)).isEqualTo(r.fp32Gflops());
        }
    }

    @Test
    void rooflineRefusesABufferTheCachesWouldHold() {
        try (Device device = Device.open("cpu", 1)) {
            assertThatThrownBy(() -> Roofline.measure(device, 1 << 20)).isInstanceOf(DeviceException.class)
                    .hasMessageContaining("read_bytes");
        }
    }

    @Test
    void unknownXpuflowIsaIsReportedNotIgnored() throws Exception {
        assertThat(isaWarningWith("avx9000")).contains("XPUFLOW_ISA=avx9000 is not an instruction set")
                .contains("using " + Devices.cpuIsa());
        assertThat(isaWarningWith("scalar")).isEqualTo("scalar|");
        assertThat(Devices.isaWarning()).isEmpty();
    }

    /** The kernels chosen and the warning, "isa|warning", in a JVM started with XPUFLOW_ISA=value. */
    private static String isaWarningWith(String value) throws IOException, InterruptedException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        ProcessBuilder pb = new ProcessBuilder(List.of(java.toString(), "-cp", System.getProperty("java.class.path"),
                "-Dorg.bytedeco.javacpp.cachedir=" + System.getProperty("org.bytedeco.javacpp.cachedir",
                        System.getProperty("java.io.tmpdir") + "/xpuflow-javacpp"),
                IsaReport.class.getName()));
        pb.environment().put("XPUFLOW_ISA", value);
        pb.redirectErrorStream(true);
        Process p = pb.start();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("child JVM finished").isTrue();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertThat(p.exitValue()).as(out).isZero();
        return out.lines().reduce((a, b) -> b).orElse("");
    }

    /** The child JVM's entry point. */
    static final class IsaReport {
        public static void main(String[] args) {
            System.out.println(Devices.cpuIsa() + "|" + Devices.isaWarning().orElse(""));
        }
    }
}
