package io.xpuflow.operators;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.engine.EngineOptions;
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
 */
public record EngineSpec(String modelPath, int threads, long kvCacheBytes, int maxNumSeqs, int maxNumBatchedTokens,
                         int maxModelLen, WeightFormat weightFormat, KvCacheDtype kvCacheDtype,
                         Duration logStatsInterval) implements Serializable {

    public EngineSpec {
        if (modelPath == null || modelPath.isBlank()) {
            throw new IllegalArgumentException("model path is required");
        }
        toOptions(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype, logStatsInterval); // validates
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
                kvCacheDtype, logStatsInterval);
    }

    public EngineSpec withKvCacheBytes(long bytes) {
        return new EngineSpec(modelPath, threads, bytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype, logStatsInterval);
    }

    public EngineSpec withMaxNumSeqs(int n) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, n, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype, logStatsInterval);
    }

    public EngineSpec withMaxNumBatchedTokens(int n) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, n, maxModelLen, weightFormat, kvCacheDtype, logStatsInterval);
    }

    public EngineSpec withMaxModelLen(int n) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, n, weightFormat,
                kvCacheDtype, logStatsInterval);
    }

    /** {@code null}: chosen from the checkpoint. */
    public EngineSpec withWeightFormat(WeightFormat format) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, format,
                kvCacheDtype, logStatsInterval);
    }

    /** {@code null}: chosen from the weight format. */
    public EngineSpec withKvCacheDtype(KvCacheDtype dtype) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen,
                weightFormat, dtype, logStatsInterval);
    }

    /** {@link Duration#ZERO}: no stats line. */
    public EngineSpec withLogStatsInterval(Duration interval) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen,
                weightFormat, kvCacheDtype, interval);
    }

    /**
     * The spec of {@code options}' engine, at {@code modelPath} as the TaskManagers see it. Options a spec
     * does not carry (block size and prefix caching: operators use the defaults) are left out. The surfaces
     * that read engine options (SQL, the Kafka job) build their spec this way, so an option the spec carries
     * reaches them without code of their own.
     */
    public static EngineSpec of(String modelPath, EngineOptions options) {
        return new EngineSpec(modelPath, options.threads(), options.kvCacheBytes(), options.maxNumSeqs(),
                options.maxNumBatchedTokens(), options.maxModelLen(), options.weightFormat(), options.kvCacheDtype(),
                options.logStatsInterval());
    }

    public EngineOptions toOptions() {
        return toOptions(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype, logStatsInterval);
    }

    private static EngineOptions toOptions(String modelPath, int threads, long kvCacheBytes, int maxNumSeqs,
                                           int maxNumBatchedTokens, int maxModelLen, WeightFormat weightFormat,
                                           KvCacheDtype kvCacheDtype, Duration logStatsInterval) {
        return EngineOptions.builder(Path.of(modelPath)).threads(threads).kvCacheBytes(kvCacheBytes)
                .maxNumSeqs(maxNumSeqs).maxNumBatchedTokens(maxNumBatchedTokens).maxModelLen(maxModelLen)
                .weightFormat(weightFormat).kvCacheDtype(kvCacheDtype).logStatsInterval(logStatsInterval).build();
    }
}
