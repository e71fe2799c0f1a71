package io.xpuflow.cli;

import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import java.nio.file.Path;
import java.time.Duration;
import org.apache.flink.configuration.MemorySize;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Engine options shared by the commands that open an engine (names as vLLM's engine arguments). */
final class EngineArgs {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "DIR", description = "Checkpoint directory.")
    Path model;

    @Option(names = "--kv-cache-memory", paramLabel = "SIZE", defaultValue = "512mb",
            converter = FlinkSyntax.MemorySizeConverter.class,
            description = "KV cache budget, e.g. 512mb or 4gb; a plain number is MiB (default ${DEFAULT-VALUE}).")
    MemorySize kvCacheMemory;

    @Option(names = "--max-num-seqs", paramLabel = "N", defaultValue = "64",
            description = "Most requests running at once (default ${DEFAULT-VALUE}).")
    int maxNumSeqs;

    @Option(names = "--max-num-batched-tokens", paramLabel = "N", defaultValue = "256",
            description = "Token budget of one engine step (default ${DEFAULT-VALUE}).")
    int maxNumBatchedTokens;

    @Option(names = "--max-model-len", paramLabel = "N", defaultValue = "0",
            description = "Longest sequence, prompt plus output (default: the model's, or what the KV budget holds).")
    int maxModelLen;

    @Option(names = "--no-prefix-caching", description = "Do not reuse the KV of repeated prompt prefixes.")
    boolean noPrefixCaching;

    @Option(names = "--log-stats-interval", paramLabel = "DURATION", defaultValue = "10s",
            converter = FlinkSyntax.DurationConverter.class,
            description = "How often the engine logs its stats line at INFO while it works (shown with --verbose);"
                    + " 0: never (default ${DEFAULT-VALUE}).")
    Duration logStatsInterval;

    @Option(names = "--speculative-method", paramLabel = "METHOD", defaultValue = "none",
            description = "Speculative decoding drafts: mtp (the model's MTP layers), ngram (prompt lookup) or none"
                    + " (default ${DEFAULT-VALUE}).")
    String speculativeMethod;

    @Option(names = "--num-speculative-tokens", paramLabel = "K", defaultValue = "2",
            description = "Drafts verified per step with a speculative method, 1.." + SpeculativeConfig.MAX_SPECULATIVE_TOKENS
                    + " (default ${DEFAULT-VALUE}).")
    int numSpeculativeTokens;

    @Option(names = "--speculative-adaptive", paramLabel = "on|off", defaultValue = "on",
            description = "Let each request lower k, or stop drafting, while its drafts are rejected (default ${DEFAULT-VALUE}).")
    String speculativeAdaptive;

    @Mixin
    FormatOptions formats = new FormatOptions();

    /** The speculative decoding the flags ask for; an IllegalArgumentException names a bad value. */
    SpeculativeConfig speculative() {
        SpeculativeConfig.Method method = SpeculativeConfig.Method.parse(speculativeMethod);
        if (method == SpeculativeConfig.Method.NONE) {
            return SpeculativeConfig.NONE;
        }
        boolean adaptive = switch (speculativeAdaptive.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "on", "true" -> true;
            case "off", "false" -> false;
            default -> throw new IllegalArgumentException("'--speculative-adaptive' must be on or off, was "
                    + speculativeAdaptive);
        };
        return new SpeculativeConfig(method, numSpeculativeTokens, adaptive, SpeculativeConfig.DEFAULT_NGRAM_MIN,
                SpeculativeConfig.DEFAULT_NGRAM_MAX);
    }

    EngineOptions toOptions(int threads) {
        return formats.applyTo(EngineOptions.builder(model)).threads(threads).kvCacheBytes(kvCacheMemory.getBytes())
                .maxNumSeqs(maxNumSeqs).maxNumBatchedTokens(maxNumBatchedTokens).maxModelLen(maxModelLen)
                .enablePrefixCaching(!noPrefixCaching).logStatsInterval(logStatsInterval).speculative(speculative()).build();
    }

    /** The same engine as an operator's spec (prefix caching is always on there). */
    EngineSpec toSpec(int threads) {
        return formats.applyTo(EngineSpec.of(model.toString()).withThreads(threads).withKvCacheBytes(kvCacheMemory.getBytes())
                .withMaxNumSeqs(maxNumSeqs).withMaxNumBatchedTokens(maxNumBatchedTokens).withMaxModelLen(maxModelLen)
                .withLogStatsInterval(logStatsInterval));
    }
}
