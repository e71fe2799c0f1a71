package io.xpuflow.operators;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.engine.EngineFaults;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.datastream.AsyncDataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.async.ResultFuture;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.util.CloseableIterator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The shared engine failing in the middle of a job costs the records it was running, not the later ones:
 * the operator's lease moves to a fresh engine and the job goes on (on a real MiniCluster, with a real
 * device failure).
 */
class EngineFailureRecoveryTest {
    @RegisterExtension
    static final MiniClusterExtension MINI = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(1).build());

    /** Its own engine settings, so no other test class's engine is involved. */
    static final EngineSpec SPEC = EngineSpec.of(Fixtures.model("stories260k").toString()).withThreads(1)
            .withKvCacheBytes(12 << 20);

    /** Engines (identity hash) each element was submitted to. */
    static final Map<String, Integer> ENGINE_OF = new ConcurrentHashMap<>();

    /** "id|max_tokens|prompt"; an id "npe" is a mapper bug, a negative max_tokens an invalid value. */
    static final RequestMapper<String> PARSE = s -> {
        String[] f = s.split("\\|", 3);
        if (f[0].equals("npe")) {
            throw new NullPointerException("mapper bug");
        }
        return GenerationRequest.ofText(f[0], f[2], SamplingParams.builder().maxTokens(Integer.parseInt(f[1])).build());
    };

    /** Breaks the shared engine's device just before submitting an element whose id starts with "crash". */
    static final class BreakingFunction extends LlmAsyncFunction<String, String> {
        BreakingFunction() {
            super(SPEC, PARSE, LlmAsyncFunctionTest.FORMAT, TimeoutPolicy.EMIT_ERROR);
        }

        @Override
        public void asyncInvoke(String element, ResultFuture<String> resultFuture) {
            if (element.startsWith("crash")) {
                EngineFaults.breakDevice(engine());
            }
            ENGINE_OF.put(element.substring(0, element.indexOf('|')), System.identityHashCode(engine()));
            super.asyncInvoke(element, resultFuture);
        }
    }

    @Test
    void recordsAfterAnEngineFailureAreServedByAFreshEngine() throws Exception {
        List<String> input = List.of("a|6|Once upon a time", "crash|6|Once upon a time", "b|6|Once upon a time",
                "npe|6|Tom", "neg|-5|Tom", "crash2|6|Lily", "c|6|Once upon a time");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(1);
        // one element in flight at a time, so each crash meets exactly one request
        CloseableIterator<String> results = AsyncDataStream.orderedWait(env.fromData(input), new BreakingFunction(),
                60, TimeUnit.SECONDS, 1).returns(Types.STRING).collectAsync();
        JobClient client = env.executeAsync("engine failure recovery");
        List<String> out = new ArrayList<>();
        results.forEachRemaining(out::add);
        client.getJobExecutionResult().get();

        assertThat(out).hasSize(7);
        String healthy = out.get(0);
        assertThat(healthy).startsWith("a|length|");
        String text = healthy.substring("a|length|".length());
        assertThat(out.get(1)).startsWith("crash|ERROR ENGINE_ERROR|").contains("device model is closed");
        assertThat(out.get(2)).isEqualTo("b|length|" + text); // a fresh engine, the same greedy text
        assertThat(out.get(3)).startsWith("null|ERROR ENGINE_ERROR|").contains("mapper bug"); // ours, not the input's
        assertThat(out.get(4)).startsWith("null|ERROR INVALID_PARAM|").contains("'max_tokens'");
        assertThat(out.get(5)).startsWith("crash2|ERROR ENGINE_ERROR|");
        assertThat(out.get(6)).isEqualTo("c|length|" + text);
        // three engines: the first, the one after the first crash, the one after the second
        assertThat(Set.of(ENGINE_OF.get("a"), ENGINE_OF.get("b"), ENGINE_OF.get("c"))).hasSize(3);
        assertThat(ENGINE_OF.get("crash")).isEqualTo(ENGINE_OF.get("a"));
        assertThat(ENGINE_OF.get("crash2")).isEqualTo(ENGINE_OF.get("b"));
        assertThat(EngineRegistry.shared().users(SPEC.toOptions())).isZero();
    }
}
