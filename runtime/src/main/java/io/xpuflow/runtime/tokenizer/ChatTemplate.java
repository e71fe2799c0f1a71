package io.xpuflow.runtime.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.Context.Library;
import com.hubspot.jinjava.interpret.CollectionTooBigException;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.OutputTooBigException;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError.ErrorReason;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.loader.ResourceNotFoundException;
import io.xpuflow.runtime.json.JsonFiles;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import jinjava.javax.el.CompositeELResolver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A model's chat template: the Jinja2 program in {@code tokenizer_config.json} that turns a conversation into
 * the prompt text the model was trained on (ChatML for Qwen: {@code <|im_start|>user\n...<|im_end|>\n}).
 *
 * <p>Rendered with Jinjava, configured like the Jinja2 environment of {@code transformers} ({@code trim_blocks},
 * {@code lstrip_blocks}, one trailing newline of the template dropped) and given the context that
 * {@code apply_chat_template} passes: {@code messages}, {@code add_generation_prompt}, {@code bos_token},
 * {@code eos_token}, {@code tools} (none) and any extra variables ({@code enable_thinking}...). Python features
 * that templates rely on and Jinjava lacks are supplied by {@link JinjaCompat}. Instances are immutable and
 * thread-safe.
 *
 * <p>A chat template comes with a checkpoint, which a user may not trust, and runs on the thread that submits a
 * request (in Flink, the task thread). So it is sandboxed the way {@code transformers} sandboxes it, and bounded:
 * it cannot {@code include}, {@code import}, {@code from}-import or {@code extends} anything (Jinjava would read
 * any resource on the class path), Jinjava-only filters that parse or render further text ({@code render},
 * {@code fromyaml}, {@code regex_replace}...) are off, and a render that runs over {@value RenderBudget#TIME_LIMIT_MILLIS}
 * ms, builds a string of more than {@value RenderBudget#MAX_STRING_CHARS} characters or allocates more than its
 * memory budget (see {@link RenderBudget}) stops with a {@link ChatTemplateException} that names the limit.
 */
public final class ChatTemplate {
    private static final Logger LOG = LoggerFactory.getLogger(ChatTemplate.class);
    /** Tags that read other templates: Jinjava would look them up on the class path. */
    private static final Set<String> DISABLED_TAGS = Set.of("include", "import", "from", "extends");
    /**
     * Jinjava's filters that Jinja2 does not have and that parse or render text (nested templates, YAML with
     * aliases, regular expressions that can backtrack for hours): no chat template uses them.
     */
    private static final Set<String> DISABLED_FILTERS =
            Set.of("render", "fromyaml", "toyaml", "fromjson", "regex_replace", "ipaddr");

    /** Released chat templates are a few KiB; a larger chat_template.jinja is not one. */
    private static final int MAX_TEMPLATE_BYTES = 1 << 20;

    private static final Jinjava JINJAVA = createEngine();

    private final String source;
    private final String prepared;
    private final String origin;
    private final String bosToken;
    private final String eosToken;

    private ChatTemplate(String source, String origin, String bosToken, String eosToken) {
        this.source = source;
        this.origin = origin;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        // Jinja2 drops a single trailing newline of the template (keep_trailing_newline=False)
        String body = source.endsWith("\n") ? source.substring(0, source.length() - 1) : source;
        this.prepared = JinjaCompat.preprocess(body);
        checkSyntax();
    }

    private static Jinjava createEngine() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new JinjaCompat.PythonResolver());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withElResolver(resolver)
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        // {{- x }} trims like Jinja2; without this Jinjava only trims around tags
                        .withUseTrimmingForNotesAndExpressions(true)
                        .withUseNaturalOperatorPrecedence(true)
                        .withKeepNullableLoopValues(true)
                        .build())
                .withDisabled(Map.of(Library.TAG, DISABLED_TAGS, Library.FILTER, DISABLED_FILTERS))
                // the budget of the render on this thread (time, memory), checked before every node
                .withNodePreProcessor((node, interpreter) -> RenderBudget.check())
                .withMaxOutputSize(RenderBudget.MAX_STRING_CHARS)
                .withMaxStringLength(RenderBudget.MAX_STRING_CHARS)
                .withMaxListSize(RenderBudget.MAX_COLLECTION_SIZE)
                .withMaxMapSize(RenderBudget.MAX_COLLECTION_SIZE)
                // Jinjava cuts range() short silently at 1000 (a long conversation's range(messages|length))
                .withRangeLimit(RenderBudget.MAX_COLLECTION_SIZE)
                .withEnableRecursiveMacroCalls(false)
                .build();
        Jinjava jinjava = new Jinjava(config);
        // the default reads any class-path resource ({% include 'META-INF/MANIFEST.MF' %}); the tags are disabled
        // too, this is the second line
        jinjava.setResourceLocator((name, encoding, interpreter) -> {
            throw new ResourceNotFoundException("a chat template cannot load other templates or files");
        });
        for (Filter f : BoundedFilters.wrap(jinjava.getGlobalContext()::getFilter)) {
            jinjava.getGlobalContext().registerFilter(f);
        }
        function(jinjava, "raise_exception", "raiseException", Object.class);
        function(jinjava, "strftime_now", "strftimeNow", Object.class);
        function(jinjava, JinjaCompat.SLICE_FUNCTION, "slice", Object.class, Object.class, Object.class);
        jinjava.getGlobalContext().registerFilter(new JinjaCompat.ToJson());
        jinjava.getGlobalContext().registerTag(new JinjaCompat.GenerationTag());
        return jinjava;
    }

    private static void function(Jinjava jinjava, String name, String method, Class<?>... parameters) {
        try {
            Method m = JinjaCompat.class.getMethod(method, parameters);
            // the class is package-private: without this the expression engine may not call it
            m.setAccessible(true);
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", name, m));
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The chat template of a model directory: {@code chat_template} of {@code tokenizer_config.json} (a string,
     * or a list of named templates of which "default" is taken), else {@code chat_template.jinja}, else
     * {@code chat_template.json}. BOS and EOS come from tokenizer_config.json.
     *
     * @throws ChatTemplateException if the model has no chat template or it does not parse
     * @throws TokenizerException if a file is not valid JSON or a field has the wrong shape
     */
    public static ChatTemplate load(Path modelDir) {
        JsonField config = JsonField.readOptional(modelDir.resolve("tokenizer_config.json"));
        String bos = config == null ? null : tokenContent(config.get("bos_token"));
        String eos = config == null ? null : tokenContent(config.get("eos_token"));
        if (config != null && !config.get("chat_template").isAbsent()) {
            JsonField t = config.get("chat_template");
            String origin = config.file() + " (chat_template)";
            if (t.node().isTextual()) {
                return new ChatTemplate(t.text(), origin, bos, eos);
            }
            List<String> names = new ArrayList<>();
            for (JsonField named : t.elements()) {
                String name = named.get("name").text();
                if (name.equals("default")) {
                    return new ChatTemplate(named.get("template").text(), origin + " 'default'", bos, eos);
                }
                names.add(name);
            }
            throw new ChatTemplateException(config.file() + ": 'chat_template' lists templates " + names
                    + " but none is named 'default'");
        }
        Path jinja = modelDir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) {
            try {
                String text = new String(JsonFiles.readBounded(jinja, MAX_TEMPLATE_BYTES), StandardCharsets.UTF_8);
                return new ChatTemplate(text, jinja.toString(), bos, eos);
            } catch (IOException e) {
                throw new ChatTemplateException(jinja + ": " + JsonFiles.describe(e), false, null);
            }
        }
        JsonField json = JsonField.readOptional(modelDir.resolve("chat_template.json"));
        if (json != null && !json.get("chat_template").isAbsent()) {
            return new ChatTemplate(json.get("chat_template").text(), json.file().toString(), bos, eos);
        }
        throw ChatTemplateException.missing(modelDir + ": the model has no chat template (no 'chat_template' in "
                + "tokenizer_config.json, no chat_template.jinja or chat_template.json); it cannot take chat "
                + "messages, only raw prompts");
    }

    /**
     * A template given as text.
     *
     * @param bosToken the {@code bos_token} variable, or null to leave it undefined
     * @param eosToken the {@code eos_token} variable, or null to leave it undefined
     * @throws ChatTemplateException if it does not parse
     */
    public static ChatTemplate of(String template, String bosToken, String eosToken) {
        return new ChatTemplate(Objects.requireNonNull(template, "template"), "chat template", bosToken, eosToken);
    }

    private static String tokenContent(JsonField f) {
        if (f.isAbsent()) {
            return null;
        }
        return f.node().isObject() ? f.get("content").text() : f.text();
    }

    /** The template as written. */
    public String source() {
        return source;
    }

    /**
     * Renders a conversation to prompt text.
     *
     * @param addGenerationPrompt end with the opening of an assistant turn, for the model to continue
     * @param extraContext further template variables ({@code enable_thinking}, {@code tools}, ...); may be null
     * @throws ChatTemplateException if rendering fails or the template rejects the conversation
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, Object> extraContext) {
        Objects.requireNonNull(messages, "messages");
        Map<String, Object> context = new HashMap<>();
        context.put("tools", null);
        if (extraContext != null) {
            for (String reserved : List.of("messages", "add_generation_prompt")) {
                if (extraContext.containsKey(reserved)) {
                    throw new IllegalArgumentException("'" + reserved + "' is set by render(), not by extraContext");
                }
            }
            context.putAll(extraContext);
        }
        List<Map<String, Object>> turns = new ArrayList<>(messages.size());
        for (ChatMessage m : messages) {
            Map<String, Object> turn = new LinkedHashMap<>();
            turn.put("role", m.role());
            turn.put("content", m.content());
            turns.add(turn);
        }
        context.put("messages", turns);
        context.put("add_generation_prompt", addGenerationPrompt);
        if (bosToken != null) {
            context.putIfAbsent("bos_token", bosToken);
        }
        if (eosToken != null) {
            context.putIfAbsent("eos_token", eosToken);
        }
        RenderResult result;
        String limit;
        try (RenderBudget budget = RenderBudget.start("rendering", inputChars(context))) {
            result = JINJAVA.renderForResult(prepared, context);
            limit = budget.tripped();
        }
        if (limit != null) {
            throw new ChatTemplateException(origin + ": " + limit);
        }
        for (TemplateError e : result.getErrors()) {
            // Jinjava reports some of these as warnings and goes on with the string cut short
            if (e.getReason() == ErrorReason.OUTPUT_TOO_BIG || causedBy(e, OutputTooBigException.class)) {
                throw new ChatTemplateException(origin + ": a string or the rendered text exceeds the limit of "
                        + RenderBudget.MAX_STRING_CHARS + " characters for a chat template", false, e.getException());
            }
            if (e.getReason() == ErrorReason.DISABLED) {
                throw new ChatTemplateException(origin + ": line " + e.getLineno() + ": " + disabledMessage(e));
            }
            if (e.getReason() == ErrorReason.COLLECTION_TOO_BIG || e.getReason() == ErrorReason.OVER_LIMIT
                    || causedBy(e, CollectionTooBigException.class)) {
                // Jinjava would go on with the collection cut short: a prompt that is silently wrong
                throw new ChatTemplateException(origin + ": line " + e.getLineno() + ": " + e.getMessage()
                        + " (a chat template may build lists and maps of at most " + RenderBudget.MAX_COLLECTION_SIZE
                        + " items)", false, e.getException());
            }
        }
        for (TemplateError e : result.getErrors()) {
            if (e.getSeverity() != TemplateError.ErrorType.FATAL) {
                LOG.debug("{}: {}", origin, e);
                continue;
            }
            for (Throwable t = e.getException(); t != null; t = t.getCause()) {
                if (t instanceof JinjaCompat.TemplateRaised) {
                    throw new ChatTemplateException(origin + " raised: " + t.getMessage(), true, t);
                }
            }
            throw new ChatTemplateException(origin + ": line " + e.getLineno() + ": " + e.getMessage(), false,
                    e.getException());
        }
        return result.getOutput();
    }

    /**
     * Checks the template once at load, so that one Jinjava cannot read fails then and not on the first
     * request: parsed, then rendered in Jinjava's validation mode, which visits every branch and loop body
     * without calling methods, so that expression syntax errors anywhere are found.
     */
    private void checkSyntax() {
        JinjavaInterpreter interpreter = JINJAVA.newInterpreter();
        interpreter.getContext().put("messages", List.of());
        interpreter.getContext().setValidationMode(true);
        JinjavaInterpreter.pushCurrent(interpreter);
        String limit;
        try (RenderBudget budget = RenderBudget.start("checking", source.length())) {
            try {
                interpreter.render(interpreter.parse(prepared));
            } catch (RuntimeException e) {
                LOG.debug("{}: validation render stopped early: {}", origin, e.toString());
            }
            limit = budget.tripped();
        } finally {
            JinjavaInterpreter.popCurrent();
        }
        if (limit != null) {
            throw new ChatTemplateException(origin + ": " + limit);
        }
        for (TemplateError e : interpreter.getErrorsCopy()) {
            if (e.getReason() == ErrorReason.DISABLED) {
                throw new ChatTemplateException(origin + ": line " + e.getLineno() + ": " + disabledMessage(e));
            }
        }
        for (TemplateError e : interpreter.getErrorsCopy()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL && e.getReason() == ErrorReason.SYNTAX_ERROR
                    && !raisedByTemplate(e)) {
                throw new ChatTemplateException(origin + ": line " + e.getLineno() + ": " + e.getMessage());
            }
        }
    }

    private static String disabledMessage(TemplateError e) {
        return e.getMessage() + " (a chat template cannot read files or other templates, nor use Jinjava's "
                + "filters " + new java.util.TreeSet<>(DISABLED_FILTERS) + ")";
    }

    /** Characters of text a render is given, for its memory budget. */
    private static long inputChars(Object value) {
        if (value instanceof CharSequence s) {
            return s.length();
        }
        long n = 0;
        if (value instanceof Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                n += inputChars(e.getKey()) + inputChars(e.getValue());
            }
        } else if (value instanceof Iterable<?> it) {
            for (Object o : it) {
                n += inputChars(o);
            }
        }
        return n;
    }

    private static boolean causedBy(TemplateError e, Class<? extends Throwable> type) {
        for (Throwable t = e.getException(); t != null; t = t.getCause()) {
            if (type.isInstance(t)) {
                return true;
            }
        }
        return false;
    }

    private static boolean raisedByTemplate(TemplateError e) {
        for (Throwable t = e.getException(); t != null; t = t.getCause()) {
            if (t instanceof JinjaCompat.TemplateRaised) {
                return true;
            }
        }
        return false;
    }

    @Override
    public String toString() {
        return "ChatTemplate[" + origin + "]";
    }
}
