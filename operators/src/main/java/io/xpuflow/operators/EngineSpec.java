package io.xpuflow.operators;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.engine.EngineOptions;
import java.io.Serializable;
import java.nio.file.Path;

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
 */
public record EngineSpec(String modelPath, int threads, long kvCacheBytes, int maxNumSeqs, int maxNumBatchedTokens,
                         int maxModelLen, WeightFormat weightFormat, KvCacheDtype kvCacheDtype) implements Serializable {

    public EngineSpec {
        if (modelPath == null || modelPath.isBlank()) {
            throw new IllegalArgumentException("model path is required");
        }
        toOptions(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype); // validates
    }

    /** Engine defaults (all cores, 512 MiB of KV, 64 sequences, 256 tokens per step, formats chosen from the checkpoint). */
    public static EngineSpec of(String modelPath) {
        EngineOptions d = EngineOptions.builder(Path.of(modelPath)).build();
        return new EngineSpec(modelPath, d.threads(), d.kvCacheBytes(), d.maxNumSeqs(), d.maxNumBatchedTokens(),
                d.maxModelLen(), d.weightFormat(), d.kvCacheDtype());
    }

    public EngineSpec withThreads(int n) {
        return new EngineSpec(modelPath, n, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype);
    }

    public EngineSpec withKvCacheBytes(long bytes) {
        return new EngineSpec(modelPath, threads, bytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype);
    }

    public EngineSpec withMaxNumSeqs(int n) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, n, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype);
    }

    public EngineSpec withMaxNumBatchedTokens(int n) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, n, maxModelLen, weightFormat, kvCacheDtype);
    }

    public EngineSpec withMaxModelLen(int n) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, n, weightFormat,
                kvCacheDtype);
    }

    /** {@code null}: chosen from the checkpoint. */
    public EngineSpec withWeightFormat(WeightFormat format) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, format,
                kvCacheDtype);
    }

    /** {@code null}: chosen from the weight format. */
    public EngineSpec withKvCacheDtype(KvCacheDtype dtype) {
        return new EngineSpec(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen,
                weightFormat, dtype);
    }

    public EngineOptions toOptions() {
        return toOptions(modelPath, threads, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, maxModelLen, weightFormat,
                kvCacheDtype);
    }

    private static EngineOptions toOptions(String modelPath, int threads, long kvCacheBytes, int maxNumSeqs,
                                           int maxNumBatchedTokens, int maxModelLen, WeightFormat weightFormat,
                                           KvCacheDtype kvCacheDtype) {
        return EngineOptions.builder(Path.of(modelPath)).threads(threads).kvCacheBytes(kvCacheBytes)
                .maxNumSeqs(maxNumSeqs).maxNumBatchedTokens(maxNumBatchedTokens).maxModelLen(maxModelLen)
                .weightFormat(weightFormat).kvCacheDtype(kvCacheDtype).build();
    }
}
