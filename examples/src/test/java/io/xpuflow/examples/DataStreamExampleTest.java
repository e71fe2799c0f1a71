package io.xpuflow.examples;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.testutil.Fixtures;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class DataStreamExampleTest {
    @RegisterExtension
    static final MiniClusterExtension MINI = new MiniClusterExtension();

    @Test
    void everyPromptGetsACompletion() throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        List<String> prompts = List.of("Once upon a time", "Lily and Ben", "The little dog", "");
        List<String> out = new ArrayList<>();
        DataStreamExample.complete(env.fromData(prompts), Fixtures.model("stories260k").toString())
                .executeAndCollect().forEachRemaining(out::add);
        assertThat(out).hasSize(4);
        assertThat(out).filteredOn(s -> s.startsWith("Once upon a time =>")).singleElement().asString().hasSizeGreaterThan(25);
        assertThat(out).anySatisfy(s -> assertThat(s).startsWith("Lily and Ben =>"));
    }
}
