package io.xpuflow.connector.kafka;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.connector.records.RequestParser;
import io.xpuflow.connector.records.ResponseWriter;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationHandle;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;

/** Shared settings and helpers of the Kafka pipeline tests. */
final class PipelineTests {
    private PipelineTests() {}

    static final ObjectMapper JSON = new ObjectMapper();

    /** The tiny real model, one kernel thread, a small KV cache: fast on a 2-core machine. */
    static final EngineSpec SPEC = EngineSpec.of(Fixtures.model("stories260k").toString()).withThreads(1)
            .withKvCacheBytes(32 << 20);

    static MiniClusterExtension miniCluster() {
        return new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
                .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(2).build());
    }

    /** Parallelism 2, checkpoints every {@code checkpointMs}, and no Kryo: a generic type would fail the job. */
    static StreamExecutionEnvironment env(long checkpointMs, Configuration extra) {
        Configuration conf = new Configuration();
        conf.set(PipelineOptions.GENERIC_TYPES, false);
        conf.addAll(extra);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(2);
        if (checkpointMs > 0) {
            env.enableCheckpointing(checkpointMs);
        }
        return env;
    }

    static String text(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static JsonNode json(byte[] b) {
        try {
            return JSON.readTree(b);
        } catch (IOException e) {
            throw new UncheckedIOException("not JSON: " + text(b), e);
        }
    }

    /** A result record without its timings, the only part that differs between two generations of one request. */
    static JsonNode withoutTimings(byte[] value) {
        ObjectNode n = (ObjectNode) json(value);
        n.remove("timings");
        return n;
    }

    /** What the engine on its own generates for each request, written as the pipeline writes it, by request id. */
    static Map<String, JsonNode> soloResults(List<byte[]> requests, RequestParser parser) throws Exception {
        ResponseWriter writer = new ResponseWriter();
        Map<String, JsonNode> out = new HashMap<>();
        try (EngineRegistry.Lease lease = EngineRegistry.acquire(SPEC.toOptions())) {
            List<GenerationHandle> handles = new ArrayList<>();
            for (byte[] r : requests) {
                handles.add(lease.engine().submit(parser.parse(r)));
            }
            for (int i = 0; i < handles.size(); i++) {
                GenerationResult result = handles.get(i).result().join();
                out.put(result.id(), withoutTimings(writer.result(result, RequestParser.echo(requests.get(i)),
                        KafkaInferencePipeline.modelName(SPEC.modelPath()))));
            }
        }
        return out;
    }
}
