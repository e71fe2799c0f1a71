package io.xpuflow.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.engine.LlmEngine;
import io.xpuflow.runtime.engine.TokenListener;
import io.xpuflow.runtime.sample.SamplingParams;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code xpuflow generate}: one completion of a text or token-id prompt through the serving engine. */
@Command(name = "generate", description = "Generate a completion of a prompt with the serving engine.")
final class GenerateCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Mixin
    EngineArgs engineArgs = new EngineArgs();

    @Spec
    CommandLine.Model.CommandSpec spec;

    static final class Prompt {
        @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "Prompt text (tokenized with the model's tokenizer).")
        String text;

        @Option(names = "--prompt-ids", paramLabel = "IDS", converter = PromptIds.Converter.class,
                description = "Comma-separated prompt token ids.")
        PromptIds ids;
    }

    @ArgGroup(multiplicity = "1")
    Prompt prompt;

    @Option(names = {"-n", "--max-tokens"}, defaultValue = "16", paramLabel = "N", description = "Tokens to generate at most (default ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T", description = "0 (default) decodes greedily.")
    double temperature;

    @Option(names = "--top-p", defaultValue = "1", paramLabel = "P", description = "Nucleus sampling mass (default ${DEFAULT-VALUE}: off).")
    double topP;

    @Option(names = "--top-k", defaultValue = "0", paramLabel = "K", description = "Keep the K most likely tokens (default 0: off).")
    int topK;

    @Option(names = "--min-p", defaultValue = "0", paramLabel = "P", description = "Drop tokens below P times the best (default 0: off).")
    double minP;

    @Option(names = "--seed", paramLabel = "N", description = "Seed of the sampler (default: derived from the request id).")
    Long seed;

    @Option(names = "--stop", paramLabel = "TEXT", description = "Stop string (repeatable).")
    List<String> stop = List.of();

    @Option(names = "--ignore-eos", description = "Keep generating past end-of-sequence tokens.")
    boolean ignoreEos;

    @Option(names = "--stream", description = "Print text as it is generated (with --json: one JSON line per token).")
    boolean stream;

    @Option(names = "--json", description = "Print one JSON object: text, token_ids, finish_reason, usage, timings.")
    boolean json;

    @Override
    public Integer call() {
        SamplingParams params;
        try {
            params = SamplingParams.builder().maxTokens(maxTokens).temperature(temperature).topP(topP).topK(topK)
                    .minP(minP).seed(seed).stop(stop).ignoreEos(ignoreEos).build();
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        GenerationRequest request = prompt.text != null ? GenerationRequest.ofText("cli", prompt.text, params)
                : GenerationRequest.ofTokens("cli", prompt.ids.ids(), params);
        PrintWriter out = spec.commandLine().getOut();
        try (LlmEngine engine = LlmEngine.open(engineArgs.toOptions(common.threads))) {
            TokenListener listener = !stream ? TokenListener.NONE : json
                    ? (id, delta) -> {
                        ObjectNode o = JSON.createObjectNode();
                        o.put("token_id", id);
                        o.put("text", delta);
                        out.println(o);
                        out.flush();
                    }
                    : (id, delta) -> {
                        out.print(delta);
                        out.flush();
                    };
            GenerationResult r = engine.submit(request, listener).result().join();
            if (json) {
                out.println(toJson(r));
            } else if (stream) {
                out.println();
            } else {
                out.println(engine.tokenizer().isPresent() ? r.text() : join(r.tokenIds()));
            }
        }
        return 0;
    }

    static String join(int[] ids) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < ids.length; i++) {
            b.append(i == 0 ? "" : " ").append(ids[i]);
        }
        return b.toString();
    }

    static ObjectNode toJson(GenerationResult r) {
        ObjectNode o = JSON.createObjectNode();
        o.put("text", r.text());
        o.putPOJO("token_ids", r.tokenIds());
        o.put("finish_reason", r.finishReason().wireName());
        ObjectNode usage = o.putObject("usage");
        usage.put("prompt_tokens", r.usage().promptTokens());
        usage.put("completion_tokens", r.usage().completionTokens());
        usage.put("cached_prompt_tokens", r.usage().cachedPromptTokens());
        ObjectNode timings = o.putObject("timings");
        timings.put("queue_ms", r.timings().queueMs());
        timings.put("ttft_ms", r.timings().timeToFirstTokenMs());
        timings.put("tpot_ms", r.timings().timePerOutputTokenMs());
        timings.put("total_ms", r.timings().totalMs());
        return o;
    }
}
