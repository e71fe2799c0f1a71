package io.xpuflow.cli;

import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
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
                "Uses the tokenizer.json of a model directory and prints one line of JSON: {\"ids\": [...]} for "
                        + "--text, {\"text\": \"...\"} for --ids. Non-ASCII characters are written as they are on a "
                        + "UTF-8 terminal, escaped (\\u5C0F) in a pipe or file and with --ascii."})
final class TokenizeCommand implements Callable<Integer> {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    @Mixin
    XpuFlowCli.Basic common = new XpuFlowCli.Basic();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @CommandLine.ParentCommand
    XpuFlowCli cli;

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

    @Option(names = "--show-tokens",
            description = "Add \"tokens\": the vocabulary's string for each id (e.g. \"<s>\", \"<0x0A>\").")
    boolean showTokens;

    @Option(names = "--ascii",
            description = "Escape non-ASCII characters (\\u5C0F) on a terminal too; a pipe or file always gets them escaped, "
                    + "whatever its reader's encoding.")
    boolean ascii;

    @Override
    public Integer call() throws Exception {
        Tokenizer tokenizer = Tokenizer.load(model);
        ObjectNode o = JSON.createObjectNode();
        int[] ids;
        if (input.text != null) {
            ids = tokenizer.encode(input.text, !noSpecialTokens);
            o.putPOJO("ids", ids);
        } else {
            ids = input.ids.ids();
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
        if (showTokens) {
            ArrayNode tokens = o.putArray("tokens");
            for (int id : ids) {
                tokens.add(tokenizer.token(id));
            }
        }
        ObjectWriter writer = ascii || !cli.utf8Terminal ? JSON.writer().with(JsonWriteFeature.ESCAPE_NON_ASCII) : JSON.writer();
        spec.commandLine().getOut().println(writer.writeValueAsString(o));
        return 0;
    }
}
