package io.xpuflow.runtime.sample;

import static io.xpuflow.runtime.options.Surface.JOB_FLAG;
import static io.xpuflow.runtime.options.Surface.REQUEST_JSON;

import io.xpuflow.runtime.options.Option;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * The one definition of every sampling option: name, type, default, rule and description. The JSON request
 * reader, the SQL options, {@code LLM_GENERATE}'s options JSON, the Kafka job's flags and the CLI's flags are
 * all generated from {@link #ALL}, and {@link SamplingParams} takes its defaults and per-value rules from here
 * (it only adds the rules that involve two fields, such as {@code min_tokens <= max_tokens}).
 *
 * <p><b>Adding an option</b> is one {@link #define} statement below (the option and how it sets a
 * {@link SamplingParams.Builder}), plus its field in {@link SamplingParams}; every surface, the README's
 * table (checked by a test) and the cross-surface test pick it up.
 */
public final class SamplingOptionDefs {
    private static final List<Option<?>> OPTIONS = new ArrayList<>();
    private static final Map<Option<?>, BiConsumer<SamplingParams.Builder, Object>> SETTERS = new java.util.HashMap<>();

    /** Most alternatives one token may report. */
    public static final int MAX_LOGPROBS = 20;

    public static final Option<Integer> MAX_TOKENS = define(Option.integer("max_tokens").defaultValue(16)
            .rule(v -> v >= 1, ">= 1")
            .description("Tokens to generate at most. 16 as in vLLM and OpenAI's completions API; give more per"
                    + " request, or as the job's or model's default.")
            .examples(64, 0), SamplingParams.Builder::maxTokens);

    public static final Option<Integer> MIN_TOKENS = define(Option.integer("min_tokens").defaultValue(0)
            .rule(v -> v >= 0, "in [0, max_tokens]")
            .description("End-of-sequence and stop tokens are suppressed until this many tokens were generated;"
                    + " at most max_tokens.")
            .examples(2, -1), SamplingParams.Builder::minTokens);

    public static final Option<Double> TEMPERATURE = define(Option.number("temperature").defaultValue(0.0)
            .rule(v -> Double.isFinite(v) && v >= 0, "a finite number >= 0")
            .description("0 decodes greedily (reproducible); otherwise logits are divided by it before sampling.")
            .examples(0.8, -0.5), SamplingParams.Builder::temperature);

    public static final Option<Double> TOP_P = define(Option.number("top_p").defaultValue(1.0)
            .rule(v -> v > 0 && v <= 1, "in (0, 1]")
            .description("Nucleus sampling: keep the most likely tokens whose probability reaches top_p; 1: off.")
            .examples(0.9, 1.5), SamplingParams.Builder::topP);

    public static final Option<Integer> TOP_K = define(Option.integer("top_k").defaultValue(0)
            .rule(v -> v >= 0, ">= 0 (0 turns it off)")
            .description("Keep the top_k most likely tokens; 0: off.")
            .examples(40, -1), SamplingParams.Builder::topK);

    public static final Option<Double> MIN_P = define(Option.number("min_p").defaultValue(0.0)
            .rule(v -> v >= 0 && v <= 1, "in [0, 1]")
            .description("Drop tokens less likely than min_p times the most likely one; 0: off.")
            .examples(0.05, 1.5), SamplingParams.Builder::minP);

    public static final Option<Double> PRESENCE_PENALTY = define(Option.number("presence_penalty").defaultValue(0.0)
            .rule(v -> v >= -2 && v <= 2, "in [-2, 2]")
            .description("Subtracted once from the logit of every token already generated.")
            .examples(0.5, 3.0), SamplingParams.Builder::presencePenalty);

    public static final Option<Double> FREQUENCY_PENALTY = define(Option.number("frequency_penalty").defaultValue(0.0)
            .rule(v -> v >= -2 && v <= 2, "in [-2, 2]")
            .description("Subtracted from a token's logit once per time it was generated.")
            .examples(0.5, -3.0), SamplingParams.Builder::frequencyPenalty);

    public static final Option<Double> REPETITION_PENALTY = define(Option.number("repetition_penalty").defaultValue(1.0)
            .rule(v -> Double.isFinite(v) && v > 0, "> 0")
            .description("Divides positive (multiplies negative) logits of tokens in the prompt or output; 1: off.")
            .examples(1.1, 0.0), SamplingParams.Builder::repetitionPenalty);

    public static final Option<List<String>> STOP = define(Option.strings("stop").defaultValue(List.of())
            .rule(v -> v.stream().allMatch(s -> s != null && !s.isEmpty()), "non-empty strings")
            .description("Strings that end the generation (not included in the text).")
            .examples(List.of("\n\n", "The end"), List.of("a", "")), SamplingParams.Builder::stop);

    public static final Option<List<Integer>> STOP_TOKEN_IDS = define(Option.integers("stop_token_ids")
            .defaultValue(List.of())
            .rule(v -> v.stream().allMatch(i -> i != null && i >= 0), "token ids >= 0")
            .description("Token ids that end the generation (included in the token ids, not in the text).")
            .examples(List.of(2, 13), List.of(2, -1)), (b, v) -> b.stopTokenIds(new LinkedHashSet<>(v)));

    public static final Option<Boolean> IGNORE_EOS = define(Option.bool("ignore_eos").defaultValue(false)
            .description("Keep generating past end-of-sequence tokens (until max_tokens or a stop string).")
            .examples(true, "yes"), SamplingParams.Builder::ignoreEos);

    public static final Option<Integer> LOGPROBS = define(Option.integer("logprobs").defaultValue(0)
            .rule(v -> v >= 0 && v <= MAX_LOGPROBS, "in [0, " + MAX_LOGPROBS + "]")
            .description("How many top alternatives to report with each generated token's log-probability; 0: none."
                    + " Only Kafka results carry them.")
            .surfaces(REQUEST_JSON, JOB_FLAG)
            .examples(5, MAX_LOGPROBS + 1), SamplingParams.Builder::logprobs);

    public static final Option<Long> SEED = define(Option.longInteger("seed")
            .rule(v -> true, "a 64-bit integer")
            .description("Seed of the request's random generator; unset: derived from the request id (a hash of the"
                    + " prompt in SQL), so a replay after a failure samples the same text.")
            .examples(7L, 2.5), SamplingParams.Builder::seed);

    /** Every sampling option, in the order of the documentation. */
    public static final List<Option<?>> ALL = List.copyOf(OPTIONS);

    private SamplingOptionDefs() {}

    @SuppressWarnings("unchecked")
    private static <T> Option<T> define(Option.Builder<T> builder, BiConsumer<SamplingParams.Builder, T> setter) {
        Option<T> option = builder.build();
        OPTIONS.add(option);
        SETTERS.put(option, (b, v) -> setter.accept(b, (T) v));
        return option;
    }

    /**
     * Sets {@code values} (option → parsed value, as the surfaces' readers return them) on {@code builder};
     * a {@code null} value leaves the builder's value.
     */
    public static SamplingParams.Builder apply(SamplingParams.Builder builder, Map<Option<?>, ?> values) {
        values.forEach((option, value) -> {
            if (value != null) {
                BiConsumer<SamplingParams.Builder, Object> setter = SETTERS.get(option);
                if (setter == null) {
                    throw new IllegalArgumentException("'" + option + "' is not a sampling option");
                }
                setter.accept(builder, option.cast(value));
            }
        });
        return builder;
    }
}
