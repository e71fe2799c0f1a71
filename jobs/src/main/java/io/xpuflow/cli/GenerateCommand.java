package io.xpuflow.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.engine.LlmEngine;
import io.xpuflow.runtime.engine.TokenListener;
import io.xpuflow.runtime.options.Surface;
import io.xpuflow.runtime.sample.SamplingOptionDefs;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.tokenizer.ChatMessage;
import io.xpuflow.runtime.tokenizer.ChatTemplate;
import io.xpuflow.runtime.tokenizer.ChatTemplateException;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code xpuflow generate}: one completion of a text or token-id prompt through the serving engine. */
@Command(name = "generate", description = {"Generate a completion of a prompt with the serving engine.",
        "Prints the completion (or its JSON) on stdout, then one line on stderr: prompt and output tokens, time to "
                + "first token and decode tokens/s."})
final class GenerateCommand implements Callable<Integer>, OptionFlags.Host {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Mixin
    XpuFlowCli.Common common = new XpuFlowCli.Common();

    @Mixin
    EngineArgs engineArgs = new EngineArgs();

    @Mixin
    Progress.Options progress = new Progress.Options();

    @Spec
    CommandLine.Model.CommandSpec spec;

    static final class Prompt {
        @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT",
                description = "Prompt text (tokenized with the model's tokenizer); - reads it from stdin.")
        String text;

        @Option(names = "--prompt-file", paramLabel = "FILE", description = "Read the prompt text from a UTF-8 file.")
        Path file;

        @Option(names = "--prompt-ids", paramLabel = "IDS", converter = PromptIds.Converter.class,
                description = "Comma-separated prompt token ids.")
        PromptIds ids;
    }

    @ArgGroup(multiplicity = "1")
    Prompt prompt;

    @ParentCommand
    XpuFlowCli cli;

    @Option(names = "--chat", description = "Send the prompt as a user message through the model's chat template.")
    boolean chat;

    @Option(names = "--system", paramLabel = "TEXT", description = "System message before the prompt (implies --chat).")
    String system;

    /**
     * The sampling flags, one per sampling option ({@code --max-tokens}, {@code --temperature}, ...; see
     * {@link SamplingOptionDefs}), with {@code -n} for {@code --max-tokens}.
     */
    final OptionFlags sampling = new OptionFlags(Surface.CLI, SamplingOptionDefs.ALL)
            .alias(SamplingOptionDefs.MAX_TOKENS, "-n");

    @Override
    public OptionFlags optionFlags() {
        return sampling;
    }

    @Option(names = "--stream", description = "Print text as it is generated (with --json: one JSON line per token).")
    boolean stream;

    @Option(names = "--json", description = "Print one JSON object: text, token_ids, finish_reason, usage, timings.")
    boolean json;

    @Override
    public Integer call() {
        SamplingParams params;
        try {
            params = SamplingOptionDefs.apply(SamplingParams.builder(), sampling.values()).build();
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        GenerationRequest request = request(params);
        PrintWriter out = spec.commandLine().getOut();
        try (LlmEngine engine = Progress.openEngine(engineArgs.toOptions(common.threads), spec, progress)) {
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
            out.flush();
            // stderr, so that stdout stays the completion alone
            PrintWriter err = spec.commandLine().getErr();
            err.println(summary(r));
            err.flush();
        }
        return 0;
    }

    /**
     * The request the options describe. A text prompt needs the model's tokenizer and {@code --chat} its
     * chat template: both are checked here, before the model loads, rather than when the request reaches
     * the engine.
     */
    private GenerationRequest request(SamplingParams params) {
        boolean chatting = chat || system != null;
        String chatFlag = chat ? "--chat" : "--system";
        if (prompt.ids != null) {
            if (chatting) {
                throw new CommandLine.ParameterException(spec.commandLine(), chatFlag + " takes a text prompt"
                        + " (--prompt or --prompt-file), not --prompt-ids");
            }
            return GenerationRequest.ofTokens("cli", prompt.ids.ids(), params);
        }
        String text = promptText();
        Path dir = engineArgs.model;
        // a missing directory is left to the engine, whose message names the config.json it looked for
        if (Files.isDirectory(dir) && !Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            throw new IllegalArgumentException(dir + " has no tokenizer.json, so a text prompt cannot be tokenized;"
                    + " give the prompt as token ids with --prompt-ids instead");
        }
        if (!chatting) {
            return GenerationRequest.ofText("cli", text, params);
        }
        if (Files.isDirectory(dir)) {
            try {
                ChatTemplate.load(dir);
            } catch (ChatTemplateException e) {
                throw new IllegalArgumentException(chatFlag + " needs the model's chat template: " + e.getMessage(), e);
            }
        }
        List<ChatMessage> messages = system == null ? List.of(ChatMessage.user(text))
                : List.of(ChatMessage.system(system), ChatMessage.user(text));
        return GenerationRequest.ofMessages("cli", messages, params);
    }

    /**
     * The text of {@code --prompt} or {@code --prompt-file}, or stdin for {@code --prompt -}. Of a file or
     * stdin, one final line break is dropped: editors and {@code echo} add it, and it would otherwise be
     * tokenized as the end of the prompt.
     */
    private String promptText() {
        if (prompt.text != null && !prompt.text.equals("-")) {
            return prompt.text;
        }
        String source = prompt.file != null ? prompt.file.toString() : "stdin";
        byte[] bytes;
        try {
            bytes = prompt.file != null ? Files.readAllBytes(prompt.file) : cli.in.readAllBytes();
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("--prompt-file " + source + ": no such file", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the prompt from " + source + ": " + e.getMessage(), e);
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException("the prompt from " + source + " is not UTF-8 text", e);
        }
        return text.endsWith("\r\n") ? text.substring(0, text.length() - 2)
                : text.endsWith("\n") ? text.substring(0, text.length() - 1) : text;
    }

    /**
     * One line for stderr: prompt and output tokens, time to first token and decode speed (output tokens
     * after the first over the time they took, as {@code bench latency} counts them).
     */
    static String summary(GenerationResult r) {
        int output = r.usage().completionTokens();
        StringBuilder b = new StringBuilder();
        b.append("Prompt ").append(tokens(r.usage().promptTokens())).append(", output ").append(tokens(output))
                .append(", ").append(String.format(Locale.ROOT, "TTFT %.1f ms", r.timings().timeToFirstTokenMs()));
        if (output > 1 && r.timings().timePerOutputTokenMs() > 0) {
            b.append(String.format(Locale.ROOT, ", decode %.1f tokens/s", 1e3 / r.timings().timePerOutputTokenMs()));
        }
        return b.toString();
    }

    private static String tokens(int n) {
        return n + (n == 1 ? " token" : " tokens");
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
        usage.put("draft_tokens", r.usage().draftTokens());
        usage.put("accepted_tokens", r.usage().acceptedTokens());
        ObjectNode timings = o.putObject("timings");
        timings.put("queue_ms", r.timings().queueMs());
        timings.put("ttft_ms", r.timings().timeToFirstTokenMs());
        timings.put("tpot_ms", r.timings().timePerOutputTokenMs());
        timings.put("total_ms", r.timings().totalMs());
        return o;
    }
}
