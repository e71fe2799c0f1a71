package io.xpuflow.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.device.Device;
import io.xpuflow.device.Devices;
import io.xpuflow.device.Roofline;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code xpuflow bench roofline}: this machine's limits with the engine's threads, the denominators of
 * every efficiency figure the other benchmarks print (decode against the read bandwidth, prefill
 * against the arithmetic peak of the weight format's instructions).
 */
@Command(name = "roofline", description = "Measure this machine's read bandwidth and FP32 / BF16 / INT8 peaks.")
final class BenchRoofline implements Callable<Integer> {
    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Option(names = "--read-mib", defaultValue = "512", paramLabel = "MIB",
            description = "Buffer streamed by the bandwidth probe, MiB (default ${DEFAULT-VALUE}; >= 64).")
    long readMib;

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (readMib < 64) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--read-mib must be at least 64, was " + readMib);
        }
        try (Device device = Device.open("cpu", common.threads)) {
            Roofline r = Roofline.measure(device, readMib << 20);
            PrintWriter out = spec.commandLine().getOut();
            out.printf("Roofline (%d threads, %s kernels):%n", r.threads(), Devices.cpuIsa());
            out.printf("  read bandwidth  %8.1f GB/s%n", r.readGBps());
            out.printf("  FP32 FMA        %8.1f GFLOP/s%n", r.fp32Gflops());
            out.printf("  BF16 vdpbf16ps  %8.1f GFLOP/s%n", r.bf16Gflops());
            out.printf("  INT8 vpdpbusd   %8.1f GOP/s%n", r.int8Gops());
            out.println(toJson(r));
        }
        return 0;
    }

    static ObjectNode toJson(Roofline r) {
        ObjectNode o = BenchCommand.JSON.createObjectNode();
        o.put("threads", r.threads());
        o.put("read_gb_per_s", r.readGBps());
        o.put("fp32_gflops", r.fp32Gflops());
        o.put("bf16_gflops", r.bf16Gflops());
        o.put("int8_gops", r.int8Gops());
        return o;
    }
}
