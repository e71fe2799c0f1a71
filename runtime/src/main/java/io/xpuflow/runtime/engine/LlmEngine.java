package io.xpuflow.runtime.engine;

import io.xpuflow.device.DeviceModel;
import io.xpuflow.device.KvCache;
import io.xpuflow.device.StepBatch;
import io.xpuflow.device.TraceEvents;
import io.xpuflow.runtime.config.ModelConfig;
import io.xpuflow.runtime.model.KvLayout;
import io.xpuflow.runtime.model.LoadOptions;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import io.xpuflow.runtime.tokenizer.ChatTemplate;
import io.xpuflow.runtime.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.LinkedBlockingQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves many concurrent generation requests on one loaded model, the way vLLM's engine does:
 * continuous batching over a hybrid paged KV cache.
 *
 * <p>This class is the facade: it checks and queues submissions ({@link InputProcessor}), owns the loop
 * thread, its inbox and the published metrics. One loop thread owns the model, the KV cache and every
 * request's state. Each iteration it takes new requests and cancellations from its inbox and runs one
 * {@link EngineCore#step()}:
 * <ol>
 *   <li>the {@link Scheduler} plans the step ({@link StepPlan}): running requests first, oldest first,
 *       the rest of their prompt (in chunks) or their next token; when KV blocks run out, the youngest
 *       running request is preempted (its blocks freed, put back at the head of the queue, recomputed
 *       later; its output so far is kept); then, if nothing was preempted, waiting requests in arrival
 *       order while the step's token budget, the running-sequence cap and free KV blocks allow, each
 *       first reusing its cached prefix;</li>
 *   <li>the {@link ModelExecutor} runs one native step for all of them;</li>
 *   <li>the {@link OutputProcessor} samples the next token of every request whose step reached the end of
 *       its tokens from its own seeded generator (so its output does not depend on the batch),
 *       detokenises it, checks stop conditions and streams it to its listener; the scheduler advances
 *       the requests and frees the finished ones' blocks.</li>
 * </ol>
 * With speculative decoding ({@link EngineOptions#speculative()}) a {@link Drafter} then proposes each
 * decoding request's next drafts ({@link NgramDrafter}, or {@link MtpDrafter}: one MTP-only device step
 * per draft depth for the whole batch); the next step verifies them as extra rows of the same batch and
 * the {@link OutputProcessor} accepts a prefix of them through the rejection sampler.
 * KV cache, step buffers and sampler scratch are allocated when the engine opens; a step allocates
 * no native memory and, in steady-state decode, only small short-lived Java objects.
 *
 * <pre>{@code
 * try (LlmEngine engine = LlmEngine.open(EngineOptions.builder(dir).build())) {
 *     GenerationResult r = engine.submit(GenerationRequest.ofText("q1", "Once upon a time",
 *             SamplingParams.builder().maxTokens(64).build())).result().join();
 * }
 * }</pre>
 *
 * <p>Thread-safe: submit, cancel and metrics may be called from any thread.
 */
public final class LlmEngine implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(LlmEngine.class);
    private static final long METRICS_PUBLISH_NANOS = 50_000_000L;

    private final EngineOptions options;
    private final LoadedModel model;
    private final ModelConfig config;
    private final Tokenizer tokenizer;       // null: token ids only
    private final int maxModelLen;
    private final InputProcessor input;
    private final KvLayout layout;
    private final KvCacheManager kv;
    private final EngineCore core;
    private final Thread loop;
    private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
    private final Object submitLock = new Object();
    /** No more submissions: set by {@link #close()} or when the engine fails; only under submitLock. */
    private volatile boolean closed;
    /** Why the engine stopped serving on its own (set with {@link #closed}); null while serving or closed by a user. */
    private volatile Throwable failure;
    private boolean released; // guarded by submitLock
    /** Set by the loop thread when it freed the KV cache and the model itself after a failure. */
    private boolean nativeFreed;
    private long nextArrival;

    // loop-thread state
    private final EngineStats stats;
    /** Null unless the engine drafts with the model's MTP layers. */
    private final MtpDrafter mtpDrafter;
    private long lastPublish;
    private volatile EngineMetrics metrics;
    /** Null when the options turn the stats line off. */
    private final StatsLine statsLine;

    private record Cancel(RequestState request) {}

    private static final Object WAKE_UP = new Object();

    private LlmEngine(EngineOptions options, LoadedModel model, Tokenizer tokenizer, ChatTemplate chatTemplate,
                      int maxModelLen, int[] blocks) {
        this.options = options;
        this.model = model;
        this.config = model.config();
        this.tokenizer = tokenizer;
        this.maxModelLen = maxModelLen;
        Set<Integer> eos = new LinkedHashSet<>(config.eosTokenIds());
        if (tokenizer != null) {
            eos.addAll(tokenizer.eosIds());
        }
        Set<Integer> eosIds = Set.copyOf(eos);
        this.input = new InputProcessor(config, tokenizer, chatTemplate, eosIds, maxModelLen, options.modelDir());
        this.layout = model.kvLayout();
        DeviceModel dm = model.deviceModel();
        int bs = options.blockSize();
        long[] blockBytes = new long[layout.numGroups()];
        long[] counts = new long[layout.numGroups()];
        for (int g = 0; g < blockBytes.length; g++) {
            blockBytes[g] = dm.kvBlockBytes(g, bs);
            counts[g] = blocks[g];
        }
        int maxBlocksPerSeq = KvCacheManager.ceilDiv(maxModelLen, bs);
        this.kv = new KvCacheManager(layout, bs, blocks, blockBytes, maxBlocksPerSeq, options.enablePrefixCaching());
        KvCache kvCache = dm.createKvCache(bs, counts);
        SpeculativeConfig spec = options.speculative();
        boolean mtp = spec.method() == SpeculativeConfig.Method.MTP;
        int k = spec.numSpeculativeTokens();
        this.stats = new EngineStats(k);
        StepBatch batch;
        StepBatch mtpBatch = null;
        try {
            // a speculating request verifies 1 + k rows
            int logitRows = (int) Math.min(options.maxNumBatchedTokens(), (long) options.maxNumSeqs() * (1 + k));
            // with MTP, prompt rows also run MTP layer 0 in the main step (for its K/V and output hidden)
            batch = dm.newBatch(new StepBatch.Capacity(options.maxNumBatchedTokens(), options.maxNumSeqs(),
                    maxBlocksPerSeq, logitRows, mtp ? options.maxNumBatchedTokens() : 0, false, mtp, mtp));
            if (mtp) {
                // the device's scratch holds max-num-batched-tokens rows per call; the drafter splits more (a
                // prompt's rows, or rows of many requests) over several calls
                mtpBatch = dm.newBatch(new StepBatch.Capacity(1, options.maxNumSeqs(), maxBlocksPerSeq, 0,
                        options.maxNumBatchedTokens(), false, false, true));
            }
        } catch (RuntimeException e) {
            kvCache.close();
            throw e;
        }
        ModelExecutor executor = new ModelExecutor(dm, kvCache, batch);
        Drafter drafter = null;
        this.mtpDrafter = mtp ? new MtpDrafter(executor, mtpBatch, kv, layout, config.numLayers(),
                config.mtpLayers().size(), config.hiddenSize()) : null;
        if (mtp) {
            drafter = mtpDrafter;
        } else if (spec.method() == SpeculativeConfig.Method.NGRAM) {
            drafter = new NgramDrafter(spec.ngramMin(), spec.ngramMax());
        }
        this.core = new EngineCore(kv, new Scheduler(kv, options.maxNumBatchedTokens(), options.maxNumSeqs()),
                executor,
                new OutputProcessor(config.vocabSize(), eosIds, maxModelLen, stats, String.valueOf(options.modelDir())),
                stats, options.maxNumSeqs(), drafter);
        this.metrics = snapshot();
        // Driven by the loop thread rather than a scheduled executor: the counters are the loop's own state, so
        // its snapshot is consistent without locks, there is no thread per engine to start and stop, and no
        // line can come after close. The loop wakes at least every 200 ms when idle, so a line is late by at
        // most that, or by one step when a single step outlasts the interval.
        this.statsLine = options.logStatsInterval().isZero() ? null
                : new StatsLine(String.valueOf(model.dir().getFileName()), options.logStatsInterval(), metrics,
                System.nanoTime());
        this.loop = new Thread(this::runLoop, "xpuflow-engine-" + model.dir().getFileName());
        this.loop.setDaemon(true);
    }

    /**
     * Loads the model (and its tokenizer and chat template when the directory has them), sizes the KV
     * cache from the byte budget and starts the loop thread.
     *
     * @throws IllegalArgumentException if the KV budget cannot hold one sequence of the max model length
     * @throws io.xpuflow.runtime.checkpoint.CheckpointException for missing or corrupt weights
     * @throws io.xpuflow.runtime.config.ModelConfigException for a configuration the engine cannot run
     */
    public static LlmEngine open(EngineOptions options) {
        LoadedModel model = LoadedModel.load(options.modelDir(),
                new LoadOptions(options.threads(), options.maxNumBatchedTokens(), options.maxNumSeqs(),
                        options.weightFormat(), options.kvCacheDtype()));
        try {
            if (options.speculative().method() == SpeculativeConfig.Method.MTP && model.config().mtpLayers().isEmpty()) {
                throw new IllegalArgumentException("'speculative-method' is mtp but model " + options.modelDir()
                        + " has no MTP layers (num_nextn_predict_layers): use ngram or none");
            }
            Tokenizer tokenizer = Files.exists(options.modelDir().resolve("tokenizer.json"))
                    ? Tokenizer.load(options.modelDir()) : null;
            ChatTemplate template = tokenizer == null ? null : loadChatTemplate(options);
            KvLayout layout = model.kvLayout();
            long[] blockBytes = new long[layout.numGroups()];
            for (int g = 0; g < blockBytes.length; g++) {
                blockBytes[g] = model.deviceModel().kvBlockBytes(g, options.blockSize());
            }
            int maxModelLen = maxModelLen(options, model.config(), layout, blockBytes);
            int[] blocks = KvCacheManager.blocksForBudget(layout, blockBytes, options.kvCacheBytes(), options.blockSize(),
                    options.maxNumSeqs(), options.maxNumBatchedTokens(), maxModelLen);
            LlmEngine engine = new LlmEngine(options, model, tokenizer, template, maxModelLen, blocks);
            engine.loop.start();
            LOG.info("Engine on {}: max model length {}, KV blocks per group {} of {} tokens ({} MiB), {} seqs x {} tokens"
                            + " per step, tokenizer {}, chat template {}", options.modelDir(), maxModelLen,
                    java.util.Arrays.toString(blocks), options.blockSize(), options.kvCacheBytes() >> 20,
                    options.maxNumSeqs(), options.maxNumBatchedTokens(), tokenizer != null, template != null);
            return engine;
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    private static ChatTemplate loadChatTemplate(EngineOptions options) {
        try {
            return ChatTemplate.load(options.modelDir());
        } catch (io.xpuflow.runtime.tokenizer.ChatTemplateException e) {
            if (e.isMissing()) {
                LOG.debug("{} has no chat template: {}", options.modelDir(), e.getMessage());
            } else {
                // a template that does not parse or breaks the sandbox's limits: say so once, loudly
                LOG.warn("{}: chat template refused, requests with messages will be rejected: {}",
                        options.modelDir(), e.getMessage());
            }
            return null;
        }
    }

    /**
     * The configured max model length, or the model's own when not configured; without configuration it
     * shrinks to what the KV budget can hold for one sequence.
     */
    private static int maxModelLen(EngineOptions o, ModelConfig config, KvLayout layout, long[] blockBytes) {
        int modelMax = config.maxPositionEmbeddings() > 0 ? config.maxPositionEmbeddings() : 4096;
        if (o.maxModelLen() > 0) {
            return o.maxModelLen();
        }
        int len = modelMax;
        while (true) {
            try {
                KvCacheManager.blocksForBudget(layout, blockBytes, o.kvCacheBytes(), o.blockSize(), o.maxNumSeqs(),
                        o.maxNumBatchedTokens(), len);
                if (len < modelMax) {
                    LOG.warn("KV cache budget of {} MiB holds sequences of at most {} tokens; max model length lowered"
                            + " from {} (raise the KV cache bytes to serve longer ones)", o.kvCacheBytes() >> 20, len, modelMax);
                }
                return len;
            } catch (IllegalArgumentException e) {
                if (len <= o.blockSize()) {
                    throw e;
                }
                len = Math.max(o.blockSize(), len / 2 / o.blockSize() * o.blockSize());
            }
        }
    }

    public EngineOptions options() {
        return options;
    }

    public ModelConfig config() {
        return config;
    }

    /** How the model was placed: weight format and KV cache dtype as resolved, weight memory, load time. */
    public LoadedModel.Placement placement() {
        return model.placement();
    }

    /** The model's tokenizer, empty when its directory has no {@code tokenizer.json}. */
    public Optional<Tokenizer> tokenizer() {
        return Optional.ofNullable(tokenizer);
    }

    /** Longest sequence (prompt plus output) a request may reach. */
    public int maxModelLen() {
        return maxModelLen;
    }

    /** Per KV group: its sliding window in tokens, or 0 for full attention. */
    public int[] kvGroups() {
        return layout.groupWindow().clone();
    }

    /** The device model the loop steps (for fault-injection tests in this package). */
    io.xpuflow.device.DeviceModel deviceModel() {
        return model.deviceModel();
    }

    /** Blocks per KV group, as sized from the budget. */
    public int[] kvBlocks() {
        int[] n = new int[kv.numGroups()];
        for (int g = 0; g < n.length; g++) {
            n[g] = kv.numBlocks(g);
        }
        return n;
    }

    /**
     * Starts recording the device profiler's events for every following step (up to {@code capacity}
     * events until they are read), or stops with 0. See {@link io.xpuflow.device.TraceEvent}.
     */
    public void profile(int capacity) {
        model.deviceModel().trace(capacity);
    }

    /** Takes the profiler events recorded since the last call. */
    public TraceEvents readProfile() {
        return model.deviceModel().readTrace();
    }

    /** Submits a request without streaming. */
    public GenerationHandle submit(GenerationRequest request) {
        return submit(request, TokenListener.NONE);
    }

    /** Test hook: every verification of drafts (request id, drafts, accepted), called on the loop thread. */
    void verificationTrace(OutputProcessor.VerificationTrace t) {
        core.verificationTrace(t);
    }

    /**
     * Tokenizes and checks the request on the calling thread, then queues it.
     *
     * @throws GenerationException {@code INVALID_PARAM} or {@code PROMPT_TOO_LONG} for a request that
     *     cannot be served, {@code ENGINE_CLOSED} after {@link #close()}
     */
    public GenerationHandle submit(GenerationRequest request, TokenListener listener) {
        if (closed) {
            throw notServing(request.id());
        }
        InputProcessor.Prepared in = input.process(request);
        synchronized (submitLock) {
            if (closed) {
                throw notServing(request.id());
            }
            RequestState r = new RequestState(request.id(), nextArrival++, in.promptTokenIds(), in.capacity(),
                    request.sampling(), listener == null ? TokenListener.NONE : listener, in.suppressedEarly(), tokenizer,
                    kv, this);
            if (options.speculative().enabled()) {
                r.enableSpeculation(options.speculative().numSpeculativeTokens(), options.speculative().adaptive(),
                        io.xpuflow.runtime.spec.AdaptiveDraftLength.draftCostFor(config.numMoeLayers() > 0));
                if (mtpDrafter != null) {
                    r.mtp = mtpDrafter.newState();
                }
            }
            r.future.whenComplete((res, err) -> {
                if (err instanceof CancellationException) {
                    cancel(r.handle); // the caller cancelled the future itself
                }
            });
            inbox.add(r);
            return r.handle;
        }
    }

    /** The rejection of a submission after {@link #close()} or a failure of the engine. */
    private GenerationException notServing(String id) {
        Throwable f = failure;
        return f == null
                ? new GenerationException(GenerationException.Code.ENGINE_CLOSED, id, "engine is closed")
                : new GenerationException(GenerationException.Code.ENGINE_ERROR, id, "engine for " + options.modelDir()
                        + " failed and serves no more requests: " + f, f);
    }

    /**
     * Whether the engine takes requests: false once closed, or once it failed as a whole (see
     * {@link #failure()}). A shared engine that is not serving is replaced by {@link EngineRegistry}.
     */
    public boolean isServing() {
        return !closed;
    }

    /**
     * Why the engine stopped serving on its own (a failed device step, a broken invariant of its loop),
     * empty while it serves or after a plain {@link #close()}. Requests pending at the failure completed
     * with {@code ENGINE_ERROR}; later submissions are refused with it.
     */
    public Optional<Throwable> failure() {
        return Optional.ofNullable(failure);
    }

    void cancel(GenerationHandle handle) {
        for (Object o : inbox) {
            if (o instanceof RequestState r && r.handle == handle) {
                if (inbox.remove(r)) {
                    finishUnscheduled(r);
                    return;
                }
            }
        }
        if (!closed) {
            inbox.add(new Cancel(handle.state));
        }
    }

    private static void finishUnscheduled(RequestState r) {
        // never reached the loop: nothing allocated, nothing generated
        r.status = RequestStatus.FINISHED_ABORTED;
        OutputProcessor.complete(r);
    }

    /** The latest metrics, published by the loop thread between steps (at most every 50 ms while busy). */
    public EngineMetrics metrics() {
        return metrics;
    }

    // ---------------------------------------------------------------------------------------- loop

    private void runLoop() {
        try {
            while (!closed) {
                boolean idle = !core.hasUnfinished();
                Object first = idle ? inbox.poll(200, java.util.concurrent.TimeUnit.MILLISECONDS) : inbox.poll();
                if (first != null) {
                    accept(first);
                    for (Object o; (o = inbox.poll()) != null; ) {
                        accept(o);
                    }
                }
                if (core.hasUnfinished()) {
                    core.step();
                }
                publishMetrics(idle || core.numRunning() == 0);
                logStats();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Throwable t) {
            failEngine(t);
            return;
        }
        failAll(GenerationException.Code.ENGINE_CLOSED, "engine closed before the request finished");
    }

    /**
     * The engine as a whole cannot go on (a device step failed, so the KV cache and the device are in an
     * unknown state; or a loop invariant broke): it stops taking requests, fails every pending one with
     * ENGINE_ERROR and frees its native memory at once, so a replacement (see {@link EngineRegistry}) can
     * have it even before the last user calls {@link #close()}.
     */
    private void failEngine(Throwable t) {
        LOG.error("Engine for {} failed; failing its {} pending requests, it serves no more", options.modelDir(),
                core.numRunning() + core.numWaiting() + inbox.size(), t);
        synchronized (submitLock) {
            // under the lock: a submit either got in before (and is failed below) or sees closed
            failure = t;
            closed = true;
        }
        failAll(GenerationException.Code.ENGINE_ERROR, "engine failed: " + t);
        try {
            core.close();
            model.close();
        } catch (RuntimeException e) {
            LOG.warn("Freeing the native memory of the failed engine for {} failed too", options.modelDir(), e);
        }
        nativeFreed = true;
    }

    private void accept(Object o) {
        if (o instanceof RequestState r) {
            core.addRequest(r);
        } else if (o instanceof Cancel c) {
            core.abort(c.request());
        }
    }

    private void failAll(GenerationException.Code code, String message) {
        List<RequestState> all = new ArrayList<>(core.removeAll());
        for (Object o; (o = inbox.poll()) != null; ) {
            if (o instanceof RequestState r) {
                all.add(r); // never reached the core: holds no blocks
            }
        }
        try {
            metrics = snapshot(); // before the futures complete: whoever reacts to them sees the engine empty
        } catch (RuntimeException e) {
            LOG.debug("Could not take the final metrics of the engine for {}", options.modelDir(), e);
        }
        for (RequestState r : all) {
            if (!r.status.isFinished()) {
                OutputProcessor.fail(r, new GenerationException(code, r.id, message));
            }
        }
    }

    private void publishMetrics(boolean force) {
        long now = System.nanoTime();
        stats.tick(now);
        if (force || now - lastPublish >= METRICS_PUBLISH_NANOS) {
            metrics = snapshot();
            lastPublish = now;
        }
    }

    private void logStats() {
        if (statsLine == null) {
            return;
        }
        long now = System.nanoTime();
        if (statsLine.due(now)) {
            String line = statsLine.next(snapshot(), now);
            if (line != null) {
                LOG.info("{}", line);
            }
        }
    }

    private EngineMetrics snapshot() {
        return core.snapshot();
    }

    /**
     * Stops the loop (requests not finished fail with {@code ENGINE_CLOSED}) and frees the KV cache and
     * the model. Idempotent.
     */
    @Override
    public void close() {
        if (Thread.currentThread() == loop) {
            throw new IllegalStateException("close the engine from outside its loop thread (not from a listener or"
                    + " a result callback)");
        }
        synchronized (submitLock) {
            if (released) {
                return;
            }
            released = true;
            closed = true;
        }
        inbox.add(WAKE_UP);
        boolean interrupted = false;
        while (loop.isAlive()) {
            try {
                loop.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (!nativeFreed) { // visible: written by the loop thread before it ended, and we joined it
            core.close();
            model.close();
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        LOG.info("Engine on {} closed after {} steps, {} requests", options.modelDir(), stats.steps(), stats.finished());
    }
}
