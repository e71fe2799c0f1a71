package io.xpuflow.operators;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.datastream.AsyncDataStream;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.util.CloseableIterator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class LlmAsyncFunctionTest {
    @RegisterExtension
    static final MiniClusterExtension MINI = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(2).build());

    static final EngineSpec SPEC = EngineSpec.of(Fixtures.model("stories260k").toString()).withThreads(1)
            .withKvCacheBytes(16 << 20);

    /** Elements are "id|max_tokens|prompt"; outputs "id|finish|text" or "id|ERROR CODE|message". */
    static final RequestMapper<String> PARSE = s -> {
        String[] f = s.split("\\|", 3);
        if (f.length != 3) {
            throw new InvalidInputException(ErrorCode.MISSING_FIELD, null, "need id|max_tokens|prompt: " + s);
        }
        int max;
        try {
            max = Integer.parseInt(f[1]);
        } catch (NumberFormatException e) {
            throw new InvalidInputException(ErrorCode.INVALID_PARAM, f[0], "max_tokens is not a number: " + f[1]);
        }
        return GenerationRequest.ofText(f[0], f[2], SamplingParams.builder().maxTokens(max).temperature(0.8).build());
    };

    static final ResultMapper<String, String> FORMAT = new ResultMapper<>() {
        @Override
        public String onResult(String element, GenerationResult r) {
            return r.id() + "|" + r.finishReason().wireName() + "|" + r.text();
        }

        @Override
        public String onError(String element, String requestId, ErrorCode code, String message) {
            return requestId + "|ERROR " + code + "|" + message;
        }
    };

    /** Records which engine each subtask got. */
    static final Map<Integer, Integer> ENGINE_BY_SUBTASK = new ConcurrentHashMap<>();

    static final class RecordingFunction extends LlmAsyncFunction<String, String> {
        RecordingFunction(EngineSpec spec, TimeoutPolicy policy) {
            super(spec, PARSE, FORMAT, policy);
        }

        @Override
        public void open(OpenContext ctx) throws Exception {
            super.open(ctx);
            ENGINE_BY_SUBTASK.put(getRuntimeContext().getTaskInfo().getIndexOfThisSubtask(), System.identityHashCode(engine()));
        }
    }

    /** A finished job of the tests below and everything it emitted. */
    record Run(JobID job, List<String> outputs) {}

    /** {@code fn} over {@code input} with parallelism 2, on the MiniCluster of the calling test class, to its end. */
    static Run runJob(List<String> input, LlmAsyncFunction<String, String> fn, long timeoutMs) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(2);
        DataStream<String> in = env.fromData(input).rebalance();
        CloseableIterator<String> results = AsyncDataStream.unorderedWait(in, fn, timeoutMs, TimeUnit.MILLISECONDS, 16)
                .returns(Types.STRING).collectAsync();
        JobClient client = env.executeAsync("llm async function");
        List<String> out = new ArrayList<>();
        results.forEachRemaining(out::add); // to the end of the bounded job
        client.getJobExecutionResult().get();
        return new Run(client.getJobID(), out);
    }

    private static List<String> run(List<String> input, LlmAsyncFunction<String, String> fn, long timeoutMs) throws Exception {
        return runJob(input, fn, timeoutMs).outputs();
    }

    @Test
    void everyElementGetsItsEngineOutputAndSubtasksShareOneEngine() throws Exception {
        List<String> input = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            input.add("q" + i + "|" + (5 + i % 20) + "|Once upon a time " + i);
        }
        input.add("no-fields");
        input.add("bad|many|Lily");
        List<String> out = run(input, new RecordingFunction(SPEC, LlmAsyncFunction.TimeoutPolicy.EMIT_ERROR), 60_000);

        Map<String, String> byId = new TreeMap<>();
        for (String o : out) {
            byId.put(o.substring(0, o.indexOf('|')), o);
        }
        assertThat(out).hasSize(42);
        assertThat(byId.get("null")).startsWith("null|ERROR MISSING_FIELD|");
        assertThat(byId.get("bad")).startsWith("bad|ERROR INVALID_PARAM|max_tokens is not a number");
        // each completion equals what the engine gives the same request on its own (seed from the id)
        try (EngineRegistry.Lease lease = EngineRegistry.acquire(SPEC.toOptions())) {
            for (int i = 0; i < 40; i++) {
                GenerationResult solo = lease.engine().submit(PARSE.toRequest(input.get(i))).result().join();
                assertThat(byId.get("q" + i)).isEqualTo(FORMAT.onResult(input.get(i), solo));
            }
        }
        assertThat(ENGINE_BY_SUBTASK).containsOnlyKeys(0, 1);
        assertThat(Set.copyOf(ENGINE_BY_SUBTASK.values())).hasSize(1);
        assertThat(EngineRegistry.shared().users(SPEC.toOptions())).isZero(); // released when the job ended
    }

    @Test
    void promptsTooLongForTheContextAndTimeoutsBecomeErrorOutputs() throws Exception {
        EngineSpec shortContext = SPEC.withMaxModelLen(32);
        List<String> input = List.of(
                "long|5|" + "Once upon a time there was a little girl named Lily who loved the park. ".repeat(4),
                "slow|400|Once upon a time",
                "ok|3|Tom");
        // a context of 32 tokens cannot run 400 tokens, so "slow" stops by length; the timeout test uses a
        // second engine with a long context and a tiny timeout
        List<String> out = run(input, new LlmAsyncFunction<>(shortContext, PARSE, FORMAT,
                LlmAsyncFunction.TimeoutPolicy.EMIT_ERROR), 60_000);
        assertThat(out).anySatisfy(o -> assertThat(o).startsWith("long|ERROR PROMPT_TOO_LONG|"))
                .anySatisfy(o -> assertThat(o).startsWith("slow|length|"))
                .anySatisfy(o -> assertThat(o).startsWith("ok|"));

        List<String> timedOut = run(List.of("t|5000|Once upon a time"), new LlmAsyncFunction<>(
                SPEC.withMaxModelLen(512), s -> GenerationRequest.ofText("t", "Once upon a time",
                SamplingParams.builder().maxTokens(500).ignoreEos(true).build()), FORMAT,
                LlmAsyncFunction.TimeoutPolicy.EMIT_ERROR), 5);
        assertThat(timedOut).singleElement().asString().startsWith("t|ERROR TIMEOUT|");
    }
}
