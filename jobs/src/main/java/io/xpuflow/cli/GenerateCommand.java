package io.xpuflow.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.runtime.model.LoadOptions;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.model.ModelRunner;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code xpuflow generate}: greedy continuation of a prompt given as token ids. */
@Command(name = "generate", description = "Generate a continuation of a prompt (greedy decoding).")
final class GenerateCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Checkpoint directory.")
    Path model;

    @Option(names = "--prompt-ids", required = true, paramLabel = "IDS", converter = PromptIds.Converter.class,
            description = "Comma-separated prompt token ids.")
    PromptIds prompt;

    @Option(names = "--max-tokens", defaultValue = "16", paramLabel = "N", description = "Tokens to generate (default ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T",
            description = "Sampling temperature; 0 (the default) is greedy, the only mode of this build.")
    double temperature;

    @Option(names = "--ignore-eos", description = "Keep generating past end-of-sequence tokens.")
    boolean ignoreEos;

    @Option(names = "--json", description = "Print one JSON object (token_ids, finish_reason, usage, timings).")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (maxTokens < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--max-tokens must not be negative, was " + maxTokens);
        }
        if (!(temperature == 0)) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--temperature " + temperature + " is not supported yet: this build decodes greedily (temperature 0)");
        }
        long t0 = System.nanoTime();
        try (LoadedModel m = LoadedModel.load(model, new LoadOptions(common.threads, 256, 1));
             ModelRunner runner = new ModelRunner(m, prompt.ids().length + maxTokens, 1)) {
            long t1 = System.nanoTime();
            int[] ids = runner.generateGreedy(prompt.ids(), maxTokens, ignoreEos);
            long t2 = System.nanoTime();
            boolean stopped = ids.length > 0 && !ignoreEos && m.config().eosTokenIds().contains(ids[ids.length - 1]);
            if (json) {
                ObjectNode o = JSON.createObjectNode();
                o.putPOJO("token_ids", ids);
                o.put("finish_reason", stopped ? "stop" : "length");
                ObjectNode usage = o.putObject("usage");
                usage.put("prompt_tokens", prompt.ids().length);
                usage.put("completion_tokens", ids.length);
                ObjectNode timings = o.putObject("timings");
                timings.put("load_ms", (t1 - t0) / 1e6);
                timings.put("generate_ms", (t2 - t1) / 1e6);
                spec.commandLine().getOut().println(JSON.writeValueAsString(o));
            } else {
                spec.commandLine().getOut().println(Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(" ")));
            }
        }
        return 0;
    }
}
