package io.xpuflow.runtime.engine;

import java.util.HashMap;
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
    private final Map<EngineOptions, Entry> engines = new HashMap<>();

    private static final class Entry {
        final LlmEngine engine;
        int users;

        Entry(LlmEngine engine) {
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
     * Takes a reference on this registry's engine for {@code options}. Opening happens under the
     * registry's lock, so concurrent first users of one model load it once.
     */
    public synchronized Lease lease(EngineOptions options) {
        Entry e = engines.get(options);
        if (e == null) {
            e = new Entry(opener.apply(options));
            engines.put(options, e);
        }
        e.users++;
        LOG.debug("Engine for {} now has {} users", options.modelDir(), e.users);
        return new Lease(this, options, e.engine);
    }

    /** Users of the engine for {@code options} (0 when none is open). */
    public synchronized int users(EngineOptions options) {
        Entry e = engines.get(options);
        return e == null ? 0 : e.users;
    }

    private void release(EngineOptions options, LlmEngine engine) {
        LlmEngine toClose = null;
        synchronized (this) {
            Entry e = engines.get(options);
            if (e == null || e.engine != engine) {
                return;
            }
            if (--e.users == 0) {
                engines.remove(options);
                toClose = e.engine;
            }
        }
        if (toClose != null) {
            LOG.info("Last user released the engine for {}; closing it", options.modelDir());
            toClose.close();
        }
    }

    /** One user's reference on a shared engine; closing it more than once releases once. */
    public static final class Lease implements AutoCloseable {
        private final EngineRegistry registry;
        private final EngineOptions options;
        private final LlmEngine engine;
        private boolean released;

        private Lease(EngineRegistry registry, EngineOptions options, LlmEngine engine) {
            this.registry = registry;
            this.options = options;
            this.engine = engine;
        }

        public LlmEngine engine() {
            if (released) {
                throw new IllegalStateException("lease on the engine for " + options.modelDir() + " was released");
            }
            return engine;
        }

        @Override
        public synchronized void close() {
            if (!released) {
                released = true;
                registry.release(options, engine);
            }
        }
    }
}
