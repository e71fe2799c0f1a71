package io.xpuflow.runtime.options;

/** Where an {@link Option} can be set; each surface spells the option's name its own way (see {@link Option}). */
public enum Surface {
    /** A field of a JSON request record on Kafka ({@code "max_tokens": 64}). */
    REQUEST_JSON,
    /** A field of {@code LLM_GENERATE(prompt, options_json)}'s JSON ({@code {"max_tokens": 8}}). */
    OPTIONS_JSON,
    /**
     * A {@code CREATE MODEL ... WITH} option ({@code 'max-tokens' = '32'}) and the same key as an
     * {@code LLM_GENERATE} job parameter ({@code xpuflow.max-tokens}).
     */
    SQL,
    /** A flag of the Kafka inference job ({@code --max-tokens 64}). */
    JOB_FLAG,
    /** A flag of the {@code xpuflow} command line ({@code generate}, {@code bench}, {@code serve}...). */
    CLI
}
