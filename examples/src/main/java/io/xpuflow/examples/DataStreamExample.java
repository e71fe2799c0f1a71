package io.xpuflow.examples;

import io.xpuflow.operators.EngineSpec;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.LlmAsyncFunction;
import io.xpuflow.operators.ResultMapper;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.datastream.AsyncDataStream;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * The smallest DataStream program with XPUFlow: a stream of prompts, an {@link LlmAsyncFunction}
 * on a shared engine, a stream of completions. Any Flink source can feed it; see
 * {@code io.xpuflow.connector.kafka.KafkaInferencePipeline} for the Kafka wiring with JSON records.
 *
 * <pre>
 * java -cp ... io.xpuflow.examples.DataStreamExample models/stories260k
 * </pre>
 */
public final class DataStreamExample {
    private DataStreamExample() {}

    /** Prompts in, "prompt => completion" lines out. */
    public static DataStream<String> complete(DataStream<String> prompts, String modelPath) {
        LlmAsyncFunction<String, String> generate = new LlmAsyncFunction<>(
                EngineSpec.of(modelPath).withKvCacheBytes(64L << 20),
                prompt -> GenerationRequest.ofText(Integer.toHexString(prompt.hashCode()), prompt,
                        SamplingParams.builder().maxTokens(32).temperature(0.8).build()),
                new ResultMapper<String, String>() {
                    @Override
                    public String onResult(String prompt, GenerationResult r) {
                        return prompt + " =>" + r.text();
                    }

                    @Override
                    public String onError(String prompt, String requestId, ErrorCode code, String message) {
                        return prompt + " => ERROR " + code + ": " + message;
                    }
                },
                LlmAsyncFunction.TimeoutPolicy.EMIT_ERROR);
        // Flink's async capacity (64) bounds the prompts in flight per subtask; the engine batches them
        return AsyncDataStream.unorderedWait(prompts, generate, 5, TimeUnit.MINUTES, 64).returns(Types.STRING);
    }

    public static void main(String[] args) throws Exception {
        String model = args.length > 0 ? args[0] : "models/stories260k";
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        DataStream<String> prompts = env.fromData(List.of("Once upon a time", "Lily and Ben", "The little dog"));
        complete(prompts, model).print();
        env.execute("xpuflow DataStream example");
    }
}
