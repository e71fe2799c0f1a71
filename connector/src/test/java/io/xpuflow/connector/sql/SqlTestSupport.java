package io.xpuflow.connector.sql;

import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import java.util.List;

/** The small real model and engine settings of the SQL tests, and the engine's own answers to compare with. */
final class SqlTestSupport {
    static final String MODEL_PATH = Fixtures.model("stories260k").toAbsolutePath().toString();

    /** One kernel thread, 16 MiB of KV, a context of 64 tokens (so a long prompt is easy to make). */
    static final EngineSpec SPEC = EngineSpec.of(MODEL_PATH).withThreads(1).withKvCacheBytes(16 << 20)
            .withMaxModelLen(64);

    /** The engine options above as model options ({@code 'k' = 'v', ...} without the braces). */
    static final String MODEL_OPTIONS = "'provider' = 'xpuflow', 'model-path' = '" + MODEL_PATH + "', 'threads' = '1',"
            + " 'kv-cache-memory' = '16mb', 'max-model-len' = '64'";

    static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Tom went to the park", "The cat sat",
            "One day, a little bird", "Tim had a big red ball", "The sun was hot and", "Sue liked to read books",
            "There was a dog named Max");

    /** More than 64 tokens: longer than the context of {@link #SPEC}. */
    static final String TOO_LONG = "Once upon a time there was a little girl named Lily who loved the park. ".repeat(4);

    private SqlTestSupport() {}

    /** What the engine generates for {@code prompt} on its own, under the id the SQL functions use. */
    static GenerationResult reference(EngineSpec spec, String prompt, SamplingParams sampling) {
        try (EngineRegistry.Lease lease = EngineRegistry.acquire(spec.toOptions())) {
            return lease.engine().submit(GenerationRequest.ofText(RequestIds.of(prompt), prompt, sampling)).result()
                    .join();
        }
    }

    /** Every message of the cause chain. */
    static String messages(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            sb.append(t.getMessage()).append('\n');
        }
        return sb.toString();
    }
}
