package io.xpuflow.cli;

import io.xpuflow.device.TraceEvent;
import io.xpuflow.device.TraceEvents;
import io.xpuflow.runtime.engine.GenerationHandle;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.LlmEngine;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code xpuflow profile}: runs a benchmark workload with the device profiler on and writes every op of
 * every step as a Chrome trace, then prints where the step time went.
 */
@Command(name = "profile", description = {"Profile the engine on a benchmark workload: a Chrome trace (open it in"
        + " Perfetto) of every op of every step, and a table of time, GB/s and GFLOP/s per op kind."})
final class ProfileCommand implements Callable<Integer> {
    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Mixin
    EngineArgs engineArgs = new EngineArgs();

    @Mixin
    BenchCommand.Workload workload = new BenchCommand.Workload();

    @Option(names = {"-n", "--num-prompts"}, defaultValue = "1", paramLabel = "N",
            description = "Requests submitted at once (default ${DEFAULT-VALUE}: one stream).")
    int numPrompts;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "The Chrome trace JSON to write.")
    Path out;

    @Option(names = "--max-events", defaultValue = "4000000", paramLabel = "N",
            description = "Events kept at most (default ${DEFAULT-VALUE}); later ones are counted as dropped.")
    int maxEvents;

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        BenchWorkload w = BenchCommand.workload(spec, numPrompts + 1, workload);
        engineArgs.disablePrefixCaching(); // every prompt is computed, as in the latency benchmark
        try (LlmEngine engine = LlmEngine.open(engineArgs.toOptions(common.threads))) {
            List<GenerationRequest> requests = w.requests(engine.config().vocabSize());
            engine.submit(requests.get(0)).result().join(); // warm-up, not recorded
            engine.profile(maxEvents);
            List<GenerationHandle> handles = new ArrayList<>();
            for (GenerationRequest r : requests.subList(1, requests.size())) {
                handles.add(engine.submit(r));
            }
            handles.forEach(h -> h.result().join());
            TraceEvents trace = engine.readProfile();
            engine.profile(0);
            ChromeTrace.write(trace.events(), out);
            PrintWriter o = spec.commandLine().getOut();
            o.printf("Profiled %d requests of %d + %d tokens: %d events%s, trace in %s%n", numPrompts, w.inputLen(),
                    w.outputLen(), trace.events().size(),
                    trace.dropped() > 0 ? " (" + trace.dropped() + " dropped: raise --max-events)" : "", out);
            Map<Boolean, List<TraceEvent>> byKind = ProfileSummary.splitByStepRows(trace.events(), numPrompts);
            o.println("Prefill (steps of more rows than streams):");
            ProfileSummary.of(byKind.get(false)).print(o);
            o.println("Decode (steps of one row per stream):");
            ProfileSummary.of(byKind.get(true)).print(o);
        }
        return 0;
    }
}
