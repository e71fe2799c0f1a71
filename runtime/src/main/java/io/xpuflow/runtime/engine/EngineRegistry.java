package io.xpuflow.runtime.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One engine per JVM for each model directory and set of options, shared by every user (all parallel
 * Flink subtasks of a TaskManager, for example) and reference-counted: the first {@link #acquire}
 * opens it, the last {@link Lease#close()} closes it. The weights are mapped and the KV cache is
 * allocated once, however many users there are.
 *
 * <p>An engine that stopped serving (it failed as a whole, see {@link LlmEngine#failure()}, or someone
 * closed it) is evicted: the next {@link #lease} opens a fresh one, and {@link Lease#engine()} of a lease
 * on the old one moves that lease to the fresh one. So one failure costs the requests pending at that
 * moment, not every later request on the TaskManager until a restart.
 *
 * <pre>{@code
 * try (EngineRegistry.Lease lease = EngineRegistry.acquire(options)) {
 *     lease.engine().submit(request);
 * }
 * }</pre>
 */
public final class EngineRegistry {
    private static final Logger LOG = LoggerFactory.getLogger(EngineRegistry.class);
    private static final EngineRegistry SHARED = new EngineRegistry(LlmEngine::open);

    private final Function<EngineOptions, LlmEngine> opener;
    /** The current engine per options; an evicted engine is no longer here (guarded by this). */
    private final Map<EngineOptions, Entry> engines = new HashMap<>();

    /** One opened engine and its users (guarded by the registry). */
    private static final class Entry {
        final EngineOptions options;
        final LlmEngine engine;
        int users;
        boolean evicted;

        Entry(EngineOptions options, LlmEngine engine) {
            this.options = options;
            this.engine = engine;
        }
    }

    EngineRegistry(Function<EngineOptions, LlmEngine> opener) {
        this.opener = opener;
    }

    /** The JVM-wide registry. */
    public static EngineRegistry shared() {
        return SHARED;
    }

    /** Takes a reference on the shared engine for {@code options}, opening it if nobody holds one. */
    public static Lease acquire(EngineOptions options) {
        return SHARED.lease(options);
    }

    /**
     * Takes a reference on this registry's engine for {@code options}, opening it when there is none or
     * the one there stopped serving. Opening happens under the registry's lock, so concurrent first users
     * of one model load it once.
     */
    public Lease lease(EngineOptions options) {
        List<Entry> evicted = new ArrayList<>(1);
        Entry e;
        try {
            synchronized (this) {
                e = current(options, evicted);
                e.users++;
                LOG.debug("Engine for {} now has {} users", options.modelDir(), e.users);
            }
        } finally {
            closeEvicted(evicted);
        }
        return new Lease(this, e);
    }

    /** Users of the engine for {@code options} (0 when none is open). */
    public synchronized int users(EngineOptions options) {
        Entry e = engines.get(options);
        return e == null ? 0 : e.users;
    }

    /**
     * The serving entry for {@code options}, opened if needed; a non-serving one is evicted first (and
     * handed out through {@code evicted}, to be closed once the lock is released). Caller holds the lock.
     */
    private Entry current(EngineOptions options, List<Entry> evicted) {
        Entry e = engines.get(options);
        if (e != null && !e.engine.isServing()) {
            evict(e);
            evicted.add(e);
            e = null;
        }
        if (e == null) {
            e = new Entry(options, opener.apply(options));
            engines.put(options, e);
        }
        return e;
    }

    private void evict(Entry e) {
        engines.remove(e.options, e);
        e.evicted = true;
        LOG.warn("Engine for {} stopped serving ({}); evicted, its {} users move to a fresh engine",
                e.options.modelDir(), e.engine.failure().map(String::valueOf).orElse("closed"), e.users);
    }

    /**
     * Closes an evicted engine at once, whoever still holds it: it serves nothing any more, and its
     * native memory (already freed by a failed engine itself) must not wait for the last old lease.
     * Outside the registry's lock: closing joins the engine's loop thread.
     */
    private static void closeEvicted(List<Entry> evicted) {
        for (Entry e : evicted) {
            try {
                e.engine.close();
            } catch (RuntimeException ex) {
                LOG.warn("Closing the evicted engine for {} failed", e.options.modelDir(), ex);
            }
        }
    }

    /** Moves {@code lease} off its entry, which stopped serving, onto the current engine (opened if needed). */
    private Entry moveOn(Entry from) {
        List<Entry> evicted = new ArrayList<>(1);
        Entry to;
        try {
            synchronized (this) {
                if (!from.evicted) {
                    evict(from);
                    evicted.add(from);
                }
                to = current(from.options, evicted);
                to.users++; // first: should opening have failed, the lease keeps its old entry and reference
                from.users--;
                LOG.info("A user of the engine for {} moved to a fresh engine ({} users)", from.options.modelDir(),
                        to.users);
            }
        } finally {
            closeEvicted(evicted);
        }
        return to;
    }

    private void release(Entry e) {
        LlmEngine toClose = null;
        synchronized (this) {
            if (--e.users == 0 && !e.evicted) {
                engines.remove(e.options, e);
                toClose = e.engine;
            }
        }
        if (toClose != null) {
            LOG.info("Last user released the engine for {}; closing it", e.options.modelDir());
            toClose.close();
        }
    }

    /**
     * One user's reference on a shared engine; closing it more than once releases once. Thread-safe: a
     * Flink subtask's task thread and its metric reporters may use it at once.
     */
    public static final class Lease implements AutoCloseable {
        private final EngineRegistry registry;
        private Entry entry; // guarded by this
        private boolean released;

        private Lease(EngineRegistry registry, Entry entry) {
            this.registry = registry;
            this.entry = entry;
        }

        /**
         * The engine to submit to: the leased one while it serves; once it stopped (failed or closed), this
         * lease moves to the registry's fresh engine for the same options, opening it if nobody did yet.
         *
         * @throws IllegalStateException after {@link #close()}
         * @throws RuntimeException as {@link LlmEngine#open} when the fresh engine cannot be opened (the
         *     lease stays on the old one and tries again on the next call)
         */
        public synchronized LlmEngine engine() {
            if (released) {
                throw new IllegalStateException("lease on the engine for " + entry.options.modelDir() + " was released");
            }
            if (!entry.engine.isServing()) {
                entry = registry.moveOn(entry);
            }
            return entry.engine;
        }

        /**
         * Submits to {@link #engine()}; should that engine stop between being handed out and taking the
         * request (a failure in another request's step), the request goes to its replacement instead of
         * failing with the old engine's {@code ENGINE_ERROR}.
         *
         * @throws GenerationException as {@link LlmEngine#submit(GenerationRequest, TokenListener)}
         */
        public GenerationHandle submit(GenerationRequest request, TokenListener listener) {
            LlmEngine e = engine();
            try {
                return e.submit(request, listener);
            } catch (GenerationException ex) {
                if (e.isServing()) {
                    throw ex;
                }
                return engine().submit(request, listener);
            }
        }

        /** {@link #submit(GenerationRequest, TokenListener)} without streaming. */
        public GenerationHandle submit(GenerationRequest request) {
            return submit(request, TokenListener.NONE);
        }

        /**
         * The latest metrics of the engine this lease holds now, without moving or opening anything (for
         * gauges, which must neither pin a dead engine nor open one from a reporter's thread).
         */
        public synchronized EngineMetrics metrics() {
            return entry.engine.metrics();
        }

        @Override
        public synchronized void close() {
            if (!released) {
                released = true;
                registry.release(entry);
            }
        }
    }
}
