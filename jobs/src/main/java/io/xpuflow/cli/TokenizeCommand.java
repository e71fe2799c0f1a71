package io.xpuflow.cli;

import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.runtime.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code xpuflow tokenize}: text to token ids, or ids back to text, with a model's {@code tokenizer.json}. */
@Command(name = "tokenize",
        description = {"Encode text to token ids, or decode token ids to text.",
                "Uses the tokenizer.json of a model directory and prints one line of JSON, non-ASCII characters "
                        + "escaped: {\"ids\": [...]} for --text, {\"text\": \"...\"} for --ids."})
final class TokenizeCommand implements Callable<Integer> {
    /** ASCII-only output, whatever the console's encoding. */
    private static final JsonMapper JSON = JsonMapper.builder().enable(JsonWriteFeature.ESCAPE_NON_ASCII).build();

    @Mixin
    XpuFlowCli.Basic common = new XpuFlowCli.Basic();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "DIR",
            description = "Model directory with tokenizer.json (tokenizer_config.json, special_tokens_map.json optional).")
    Path model;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    static final class Input {
        @Option(names = "--text", required = true, paramLabel = "TEXT", description = "Text to encode.")
        String text;

        @Option(names = "--ids", required = true, paramLabel = "IDS", converter = PromptIds.Converter.class,
                description = "Comma-separated token ids to decode.")
        PromptIds ids;
    }

    @Option(names = "--no-special-tokens",
            description = "Encode without the special tokens the tokenizer adds around a text (e.g. Llama's BOS); "
                    + "special tokens written in the text are still recognised.")
    boolean noSpecialTokens;

    @Option(names = "--skip-special-tokens",
            description = "Decode without the special tokens (default: keep them, e.g. \"<s> Hello\").")
    boolean skipSpecialTokens;

    @Override
    public Integer call() throws Exception {
        Tokenizer tokenizer = Tokenizer.load(model);
        ObjectNode o = JSON.createObjectNode();
        if (input.text != null) {
            o.putPOJO("ids", tokenizer.encode(input.text, !noSpecialTokens));
        } else {
            int[] ids = input.ids.ids();
            Path file = model.resolve("tokenizer.json");
            for (int i = 0; i < ids.length; i++) {
                if (ids[i] >= tokenizer.vocabSize()) {
                    throw new IllegalArgumentException("token id " + ids[i] + " at index " + i + " is outside the vocabulary of "
                            + file + " (ids 0 to " + (tokenizer.vocabSize() - 1) + ")");
                }
                try {
                    tokenizer.token(ids[i]);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("token id " + ids[i] + " at index " + i + " names no token in " + file, e);
                }
            }
            o.put("text", tokenizer.decode(ids, skipSpecialTokens));
        }
        spec.commandLine().getOut().println(JSON.writeValueAsString(o));
        return 0;
    }
}
