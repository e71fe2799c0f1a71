package io.xpuflow.operators;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import java.io.Serializable;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The engine an operator uses, in a form Flink can ship to TaskManagers; equal specs share one engine
 * per JVM (see {@link io.xpuflow.runtime.engine.EngineRegistry}).
 *
 * @param modelPath checkpoint directory as seen by the TaskManagers
 * @param threads kernel threads; {@code <= 0}: every core of the TaskManager
 * @param kvCacheBytes KV cache budget in bytes
 * @param maxNumSeqs most requests running at once in the engine
 * @param maxNumBatchedTokens token budget of one engine step
 * @param maxModelLen longest sequence; {@code <= 0}: the model's own (or what the KV budget holds)
 * @param weightFormat what matrix products compute in; {@code null} ({@code auto}): chosen from the checkpoint
 * @param kvCacheDtype element type of the KV cache; {@code null} ({@code auto}): chosen from the weight format
 * @param logStatsInterval how often the engine logs its stats line (see {@link EngineOptions#logStatsInterval()});
 *     {@link Duration#ZERO}: never
 * @param speculativeMethod speculative decoding's drafts ({@code speculative_method}); {@code null} or
 *     {@link SpeculativeConfig.Method#NONE}: off, and then the two below are normalized to 0 and false
 * @param numSpeculativeTokens drafts per step ({@code num_speculative_tokens}), in [1, 4] with a method
 * @param speculativeAdaptive {@code speculative_adaptive}
 */
public record EngineSpec(String modelPath, int threads, long kvCacheBytes, int maxNumSeqs, int maxNumBatchedTokens,
                         int maxModelLen, WeightFormat weightFormat, KvCacheDtype kvCacheDtype,
                         Duration logStatsInterval, SpeculativeConfig.Method speculativeMethod,
                         int numSpeculativeTokens, boolean speculativeAdaptive) implements Serializable {

    public EngineSpec {
        if (modelPath == null || modelPath.isBlank()) {
            throw new IllegalArgumentException("model path is required");
        }
        // as the engine sees it, so that specs of equal engines are equal (n-gram sizes: the defaults)
        SpeculativeConfig speculative = new SpeculativeConfig(
                speculativeMethod == null ? SpeculativeConfig.Method.NONE : speculativeMethod, numSpeculativeTokens,
                speculativeAdaptive, SpeculativeConfig.DEFAULT_NGRAM_MIN, SpeculativeConfig.DEFAULT_NGRAM_MAX);
        speculativeMethod = speculative.method();
        numSpeculativeTokens = speculative.numSpeculativeTokens();
        speculativeAdaptive = speculative.adaptive();
        toOptions(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype, logStatsInterval, speculative); // validates
    }

    /** Without speculative decoding (the form of the spec before it had it). */
    public EngineSpec(String modelPath, int threads, long kvCacheBytes, int maxNumSeqs, int maxNumBatchedTokens,
                      int maxModelLen, WeightFormat weightFormat, KvCacheDtype kvCacheDtype,
                      Duration logStatsInterval) {
        this(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat, kvCacheDtype,
                logStatsInterval, SpeculativeConfig.Method.NONE, 0, false);
    }

    /** With the default stats interval (the form of the spec before it had one; the SQL options build this). */
    public EngineSpec(String modelPath, int threads, long kvCacheBytes, int maxNumSeqs, int maxNumBatchedTokens,
                      int maxModelLen, WeightFormat weightFormat, KvCacheDtype kvCacheDtype) {
        this(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat, kvCacheDtype,
                EngineOptions.DEFAULT_LOG_STATS_INTERVAL);
    }

    /**
     * Engine defaults (all cores, 512 MiB of KV, 64 sequences, 256 tokens per step, formats chosen from the
     * checkpoint, a stats line every 10 s).
     */
    public static EngineSpec of(String modelPath) {
        EngineOptions d = EngineOptions.builder(Path.of(modelPath)).build();
        return new EngineSpec(modelPath, d.threads(), d.kvCacheBytes(), d.maxNumSeqs(), d.maxNumBatchedTokens(),
                d.maxModelLen(), d.weightFormat(), d.kvCacheDtype(), d.logStatsInterval());
    }

    public EngineSpec withThreads(int n) {
        return new EngineSpec(modelPath, n, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype, logStatsInterval, speculativeMethod, numSpeculativeTokens, speculativeAdaptive);
    }

    public EngineSpec withKvCacheBytes(long bytes) {
        return new EngineSpec(modelPath, threads, bytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype, logStatsInterval, speculativeMethod, numSpeculativeTokens, speculativeAdaptive);
    }

    public EngineSpec withMaxNumSeqs(int n) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, n, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype, logStatsInterval, speculativeMethod, numSpeculativeTokens, speculativeAdaptive);
    }

    public EngineSpec withMaxNumBatchedTokens(int n) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, n, maxModelLen, weightFormat, kvCacheDtype,
                logStatsInterval, speculativeMethod, numSpeculativeTokens, speculativeAdaptive);
    }

    public EngineSpec withMaxModelLen(int n) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, n, weightFormat,
                kvCacheDtype, logStatsInterval, speculativeMethod, numSpeculativeTokens, speculativeAdaptive);
    }

    /** {@code null}: chosen from the checkpoint. */
    public EngineSpec withWeightFormat(WeightFormat format) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, format,
                kvCacheDtype, logStatsInterval, speculativeMethod, numSpeculativeTokens, speculativeAdaptive);
    }

    /** {@code null}: chosen from the weight format. */
    public EngineSpec withKvCacheDtype(KvCacheDtype dtype) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen,
                weightFormat, dtype, logStatsInterval, speculativeMethod, numSpeculativeTokens, speculativeAdaptive);
    }

    /** {@link Duration#ZERO}: no stats line. */
    public EngineSpec withLogStatsInterval(Duration interval) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen,
                weightFormat, kvCacheDtype, interval, speculativeMethod, numSpeculativeTokens, speculativeAdaptive);
    }

    /** With speculative decoding as {@code config} sets it ({@link SpeculativeConfig#NONE}: off); n-gram sizes are the defaults. */
    public EngineSpec withSpeculative(SpeculativeConfig config) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen,
                weightFormat, kvCacheDtype, logStatsInterval, config.method(), config.numSpeculativeTokens(),
                config.adaptive());
    }

    /** Speculative decoding of the engine ({@link SpeculativeConfig#NONE}: off). */
    public SpeculativeConfig speculative() {
        return toOptions().speculative();
    }

    /**
     * The spec of {@code options}' engine, at {@code modelPath} as the TaskManagers see it. Options a spec
     * does not carry (block size and prefix caching: operators use the defaults; the n-gram sizes of
     * speculative decoding: the defaults) are left out. The surfaces
     * that read engine options (SQL, the Kafka job) build their spec this way, so an option the spec carries
     * reaches them without code of their own.
     */
    public static EngineSpec of(String modelPath, EngineOptions options) {
        return new EngineSpec(modelPath, options.threads(), options.kvCacheBytes(), options.maxNumSeqs(),
                options.maxNumBatchedTokens(), options.maxModelLen(), options.weightFormat(), options.kvCacheDtype(),
                options.logStatsInterval(), options.speculative().method(),
                options.speculative().numSpeculativeTokens(), options.speculative().adaptive());
    }

    public EngineOptions toOptions() {
        return toOptions(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype, logStatsInterval, new SpeculativeConfig(speculativeMethod, numSpeculativeTokens,
                        speculativeAdaptive, SpeculativeConfig.DEFAULT_NGRAM_MIN, SpeculativeConfig.DEFAULT_NGRAM_MAX));
    }

    private static EngineOptions toOptions(String modelPath, int threads, long kvCacheBytes, int maxNumSeqs,
                                           int maxNumBatchedTokens, int maxModelLen, WeightFormat weightFormat,
                                           KvCacheDtype kvCacheDtype, Duration logStatsInterval,
                                           SpeculativeConfig speculative) {
        return EngineOptions.builder(Path.of(modelPath)).threads(threads).kvCacheBytes(kvCacheBytes)
                .maxNumSeqs(maxNumSeqs).maxNumBatchedTokens(maxNumBatchedTokens).maxModelLen(maxModelLen)
                .weightFormat(weightFormat).kvCacheDtype(kvCacheDtype).logStatsInterval(logStatsInterval)
                .speculative(speculative).build();
    }
}
