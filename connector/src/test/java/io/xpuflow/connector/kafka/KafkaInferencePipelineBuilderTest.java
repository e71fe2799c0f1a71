package io.xpuflow.connector.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.operators.EngineSpec;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.junit.jupiter.api.Test;

/** Settings are checked when the pipeline is built, with messages that name the setting; no broker needed. */
class KafkaInferencePipelineBuilderTest {
    static final EngineSpec SPEC = EngineSpec.of("/models/none");

    static KafkaInferencePipeline.Builder complete() {
        return KafkaInferencePipeline.builder().bootstrapServers("localhost:9092").inputTopic("in").outputTopic("out")
                .consumerGroup("g").engine(SPEC);
    }

    @Test
    void requiredSettingsAreNamed() {
        assertThatThrownBy(() -> KafkaInferencePipeline.builder().build()).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("'bootstrapServers' is required");
        assertThatThrownBy(() -> KafkaInferencePipeline.builder().bootstrapServers("b").inputTopic("in").outputTopic("out")
                .engine(SPEC).build()).hasMessageContaining("'consumerGroup' is required");
        assertThatThrownBy(() -> KafkaInferencePipeline.builder().bootstrapServers("b").inputTopic("in").outputTopic("out")
                .consumerGroup("g").build()).hasMessageContaining("'engine' is required");
    }

    @Test
    void valuesAreCheckedWhenSet() {
        var b = KafkaInferencePipeline.builder();
        assertThatThrownBy(() -> b.inputTopic(" ")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("input topic");
        assertThatThrownBy(() -> b.asyncCapacity(0)).hasMessageContaining("async capacity must be >= 1");
        assertThatThrownBy(() -> b.timeout(java.time.Duration.ZERO)).hasMessageContaining("timeout must be positive");
        assertThatThrownBy(() -> b.maxPromptBytes(0)).hasMessageContaining("max prompt bytes");
        assertThatThrownBy(() -> b.transactionTimeout(java.time.Duration.ofMillis(10))).hasMessageContaining("at least 1 s");
    }

    @Test
    void topicsThatWouldFeedBackAreRefused() {
        assertThatThrownBy(() -> complete().outputTopic("in").build()).hasMessageContaining("output topic must differ");
        assertThatThrownBy(() -> complete().deadLetterTopic("in").build()).hasMessageContaining("dead-letter topic must differ");
    }

    @Test
    void exactlyOnceNeedsCheckpointing() {
        KafkaInferencePipeline p = complete().build();
        assertThat(p.deliveryGuarantee()).isEqualTo(DeliveryGuarantee.EXACTLY_ONCE);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        assertThatThrownBy(() -> p.addTo(env)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("checkpointing is off").hasMessageContaining("enableCheckpointing");
        env.enableCheckpointing(1000);
        assertThat(p.addTo(env)).isNotNull();
        // at-least-once works without checkpoints
        complete().deliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE).build(StreamExecutionEnvironment.getExecutionEnvironment());
    }

    @Test
    void theOperatorsHaveStableUids() {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.enableCheckpointing(1000);
        complete().deadLetterTopic("dlq").build(env);
        assertThat(env.getStreamGraph().getStreamNodes()).extracting(n -> n.getTransformationUID())
                .contains(KafkaInferencePipeline.SOURCE_UID, KafkaInferencePipeline.GENERATE_UID);
    }

    @Test
    void errorsGoToTheDeadLetterTopicOrTheOutputTopic() {
        OutputRecord result = new OutputRecord(OutputRecord.Kind.RESULT, null, new byte[0], "a");
        OutputRecord error = new OutputRecord(OutputRecord.Kind.ERROR, null, new byte[0], "a");
        var withDlq = new OutputRecordSerializationSchema("out", "dlq");
        assertThat(withDlq.topicOf(result)).isEqualTo("out");
        assertThat(withDlq.topicOf(error)).isEqualTo("dlq");
        var without = new OutputRecordSerializationSchema("out", null);
        assertThat(without.topicOf(error)).isEqualTo("out");
        assertThat(without.serialize(error, null, 5L).topic()).isEqualTo("out");
    }
}
