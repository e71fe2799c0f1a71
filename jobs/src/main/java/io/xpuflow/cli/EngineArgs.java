package io.xpuflow.cli;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineOptionDefs;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.options.Surface;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Option;

/**
 * Engine options shared by the commands that open an engine: {@code --model}, and one flag per engine option
 * that the CLI takes ({@link EngineOptionDefs}: {@code --kv-cache-memory}, {@code --max-num-seqs},
 * {@code --max-num-batched-tokens}, {@code --max-model-len}, {@code --block-size},
 * {@code --enable-prefix-caching}, {@code --weight-format}, {@code --kv-cache-dtype},
 * {@code --log-stats-interval}), names as vLLM's engine arguments.
 */
final class EngineArgs implements OptionFlags.Host {
    private static final Logger LOG = LoggerFactory.getLogger(EngineArgs.class);

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "DIR", description = "Checkpoint directory.")
    Path model;

    /** Deprecated spelling of {@code --enable-prefix-caching false}, kept working. */
    @Option(names = "--no-prefix-caching", hidden = true,
            description = "Deprecated: use --enable-prefix-caching false.")
    boolean noPrefixCaching;

    final OptionFlags flags = new OptionFlags(Surface.CLI, EngineOptionDefs.ALL);

    /** Set by commands that must compute every prompt (benchmarks), whatever the flags say. */
    private boolean prefixCachingOff;

    /** Turns prefix caching off for a command that must compute every prompt. */
    void disablePrefixCaching() {
        prefixCachingOff = true;
    }

    /** {@code --max-num-seqs}. */
    int maxNumSeqs() {
        return flags.get(EngineOptionDefs.MAX_NUM_SEQS);
    }

    @Override
    public OptionFlags optionFlags() {
        return flags;
    }

    /** The engine options given; {@code --no-prefix-caching} (deprecated) turns prefix caching off. */
    private Map<io.xpuflow.runtime.options.Option<?>, Object> values() {
        if (noPrefixCaching) {
            LOG.warn("--no-prefix-caching is deprecated; use --enable-prefix-caching false");
        }
        if (!noPrefixCaching && !prefixCachingOff) {
            return flags.values();
        }
        Map<io.xpuflow.runtime.options.Option<?>, Object> v = new java.util.LinkedHashMap<>(flags.values());
        v.put(EngineOptionDefs.ENABLE_PREFIX_CACHING, false);
        return v;
    }

    EngineOptions toOptions(int threads) {
        return EngineOptionDefs.apply(EngineOptions.builder(model), values()).threads(threads).build();
    }

    /** The same engine as an operator's spec (prefix caching is always on there, blocks are of the default size). */
    EngineSpec toSpec(int threads) {
        return EngineSpec.of(model.toString(), toOptions(threads));
    }

    /** {@code --weight-format}; {@code null}: auto. */
    WeightFormat weightFormat() {
        return WeightFormat.parseOrAuto(flags.get(EngineOptionDefs.WEIGHT_FORMAT));
    }

    /** {@code --kv-cache-dtype}; {@code null}: auto. */
    KvCacheDtype kvCacheDtype() {
        return KvCacheDtype.parseOrAuto(flags.get(EngineOptionDefs.KV_CACHE_DTYPE));
    }

    /** {@code --log-stats-interval}. */
    Duration logStatsInterval() {
        return flags.get(EngineOptionDefs.LOG_STATS_INTERVAL);
    }
}
