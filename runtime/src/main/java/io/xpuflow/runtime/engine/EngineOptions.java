package io.xpuflow.runtime.engine;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import java.nio.file.Path;
import java.time.Duration;

/**
 * How an engine is set up; equal options share one engine in the {@link EngineRegistry}. Names follow
 * vLLM's engine arguments where one exists.
 *
 * @param modelDir checkpoint directory (normalised to an absolute path)
 * @param threads kernel threads; {@code <= 0}: every core
 * @param kvCacheBytes KV cache budget in bytes; decides the number of blocks
 * @param blockSize tokens per KV block
 * @param maxNumSeqs most requests running at once
 * @param maxNumBatchedTokens token budget of one step (prefill chunks and decode tokens together)
 * @param maxModelLen longest sequence, prompt plus output; {@code <= 0}: the model's
 *     {@code max_position_embeddings}
 * @param enablePrefixCaching reuse the KV of full blocks whose token prefix was seen before
 * @param weightFormat what matrix products compute in; {@code null}: chosen from the checkpoint (BF16
 *     for BF16 and FP8 checkpoints, exact otherwise)
 * @param kvCacheDtype element type of the KV cache; {@code null}: FP32 in exact mode, BF16 in the fast modes
 * @param logStatsInterval how often the engine logs its stats line at INFO (throughput, running and waiting
 *     requests, KV cache usage, prefix cache hit rate), and only when it had work since the last line;
 *     {@link Duration#ZERO}: never. Part of the equality, so engines that differ only here are not shared.
 * @param speculative speculative decoding: where drafts come from ({@code mtp}: the checkpoint's MTP layers,
 *     {@code ngram}: prompt lookup), how many per step, adaptive or fixed; {@link SpeculativeConfig#NONE}: off
 */
public record EngineOptions(Path modelDir, int threads, long kvCacheBytes, int blockSize, int maxNumSeqs,
                            int maxNumBatchedTokens, int maxModelLen, boolean enablePrefixCaching,
                            WeightFormat weightFormat, KvCacheDtype kvCacheDtype, Duration logStatsInterval,
                            SpeculativeConfig speculative) {

    public static final long DEFAULT_KV_CACHE_BYTES = EngineOptionDefs.KV_CACHE_MEMORY.defaultValue();
    /** As vLLM's default of its stats line. */
    public static final Duration DEFAULT_LOG_STATS_INTERVAL = EngineOptionDefs.LOG_STATS_INTERVAL.defaultValue();

    public EngineOptions {
        if (modelDir == null) {
            throw new IllegalArgumentException("model directory is required");
        }
        modelDir = modelDir.toAbsolutePath().normalize();
        // the rules of the option definitions, as every surface applies them ("'max_num_seqs' must be ...")
        EngineOptionDefs.KV_CACHE_MEMORY.check(kvCacheBytes);
        EngineOptionDefs.BLOCK_SIZE.check(blockSize);
        EngineOptionDefs.MAX_NUM_SEQS.check(maxNumSeqs);
        EngineOptionDefs.MAX_NUM_BATCHED_TOKENS.check(maxNumBatchedTokens);
        if (logStatsInterval == null) {
            throw new IllegalArgumentException("'log_stats_interval' is required (zero: no stats line)");
        }
        if (speculative == null) {
            speculative = SpeculativeConfig.NONE;
        }
        EngineOptionDefs.LOG_STATS_INTERVAL.check(logStatsInterval);
    }

    /**
     * Defaults for {@code modelDir}: all cores, 512 MiB of KV, blocks of 16, 64 sequences, 256 tokens per step,
     * a stats line every 10 s.
     */
    public static Builder builder(Path modelDir) {
        return new Builder(modelDir);
    }

    public Builder toBuilder() {
        return new Builder(modelDir).threads(threads).kvCacheBytes(kvCacheBytes).blockSize(blockSize)
                .maxNumSeqs(maxNumSeqs).maxNumBatchedTokens(maxNumBatchedTokens).maxModelLen(maxModelLen)
                .enablePrefixCaching(enablePrefixCaching).weightFormat(weightFormat).kvCacheDtype(kvCacheDtype)
                .logStatsInterval(logStatsInterval).speculative(speculative);
    }

    public static final class Builder {
        private final Path modelDir;
        private int threads = EngineOptionDefs.THREADS.defaultValue();
        private long kvCacheBytes = DEFAULT_KV_CACHE_BYTES;
        private int blockSize = EngineOptionDefs.BLOCK_SIZE.defaultValue();
        private int maxNumSeqs = EngineOptionDefs.MAX_NUM_SEQS.defaultValue();
        private int maxNumBatchedTokens = EngineOptionDefs.MAX_NUM_BATCHED_TOKENS.defaultValue();
        private int maxModelLen = EngineOptionDefs.MAX_MODEL_LEN.defaultValue();
        private boolean enablePrefixCaching = EngineOptionDefs.ENABLE_PREFIX_CACHING.defaultValue();
        private WeightFormat weightFormat;
        private KvCacheDtype kvCacheDtype;
        private Duration logStatsInterval = DEFAULT_LOG_STATS_INTERVAL;
        // speculative decoding, as its three options set it; combined into one SpeculativeConfig by build()
        private SpeculativeConfig.Method speculativeMethod = SpeculativeConfig.Method.NONE;
        private int numSpeculativeTokens = EngineOptionDefs.NUM_SPECULATIVE_TOKENS.defaultValue();
        private boolean speculativeAdaptive = EngineOptionDefs.SPECULATIVE_ADAPTIVE.defaultValue();
        private int ngramMin = SpeculativeConfig.DEFAULT_NGRAM_MIN;
        private int ngramMax = SpeculativeConfig.DEFAULT_NGRAM_MAX;

        private Builder(Path modelDir) {
            this.modelDir = modelDir;
        }

        public Builder threads(int v) { threads = v; return this; }
        public Builder kvCacheBytes(long v) { kvCacheBytes = v; return this; }
        public Builder blockSize(int v) { blockSize = v; return this; }
        public Builder maxNumSeqs(int v) { maxNumSeqs = v; return this; }
        public Builder maxNumBatchedTokens(int v) { maxNumBatchedTokens = v; return this; }
        public Builder maxModelLen(int v) { maxModelLen = v; return this; }
        public Builder enablePrefixCaching(boolean v) { enablePrefixCaching = v; return this; }
        /** {@code null}: chosen from the checkpoint. */
        public Builder weightFormat(WeightFormat v) { weightFormat = v; return this; }
        /** {@code null}: FP32 in exact mode, BF16 in the fast modes. */
        public Builder kvCacheDtype(KvCacheDtype v) { kvCacheDtype = v; return this; }
        /** {@link Duration#ZERO}: no stats line. */
        public Builder logStatsInterval(Duration v) { logStatsInterval = v; return this; }
        /** {@link SpeculativeConfig#NONE} (the default): no speculative decoding. */
        public Builder speculative(SpeculativeConfig v) {
            SpeculativeConfig c = v == null ? SpeculativeConfig.NONE : v;
            speculativeMethod = c.method();
            if (c.enabled()) { // NONE carries no k and no adaptivity: keep the ones set
                numSpeculativeTokens = c.numSpeculativeTokens();
                speculativeAdaptive = c.adaptive();
            }
            ngramMin = c.ngramMin();
            ngramMax = c.ngramMax();
            return this;
        }
        /** {@code speculative_method}; {@link SpeculativeConfig.Method#NONE} (the default): off. */
        public Builder speculativeMethod(SpeculativeConfig.Method v) { speculativeMethod = v; return this; }
        /**
         * {@code num_speculative_tokens} (default 2), checked against the method by {@link #build()}: in
         * [1, 4] unless the method is none, which ignores it.
         */
        public Builder numSpeculativeTokens(int v) { numSpeculativeTokens = v; return this; }
        /** {@code speculative_adaptive} (default true); ignored with method none. */
        public Builder speculativeAdaptive(boolean v) { speculativeAdaptive = v; return this; }

        public EngineOptions build() {
            return new EngineOptions(modelDir, threads, kvCacheBytes, blockSize, maxNumSeqs, maxNumBatchedTokens,
                    maxModelLen, enablePrefixCaching, weightFormat, kvCacheDtype, logStatsInterval,
                    new SpeculativeConfig(speculativeMethod, numSpeculativeTokens, speculativeAdaptive, ngramMin,
                            ngramMax));
        }
    }
}
