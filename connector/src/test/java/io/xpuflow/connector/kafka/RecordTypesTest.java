package io.xpuflow.connector.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.java.typeutils.PojoTypeInfo;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

/** The stream's element types must go through Flink's POJO serializer: Kryo is slow and not schema-evolvable. */
class RecordTypesTest {

    static <T> T roundTrip(Class<T> type, T value) throws Exception {
        TypeInformation<T> info = TypeInformation.of(type);
        assertThat(info).isInstanceOf(PojoTypeInfo.class);
        SerializerConfigImpl config = new SerializerConfigImpl();
        config.setGenericTypes(false); // Kryo fallback would throw
        TypeSerializer<T> serializer = info.createSerializer(config);
        DataOutputSerializer out = new DataOutputSerializer(64);
        serializer.serialize(value, out);
        T copy = serializer.copy(value);
        assertThat(copy).isEqualTo(value);
        // the object-reuse path too (records are immutable: Flink builds a new one)
        T reused = serializer.deserialize(serializer.createInstance(),
                new DataInputDeserializer(out.getSharedBuffer(), 0, out.length()));
        assertThat(reused).isEqualTo(value);
        return serializer.deserialize(new DataInputDeserializer(out.getSharedBuffer(), 0, out.length()));
    }

    @Test
    void promptRecordIsAPojoAndRoundTripsWithNulls() throws Exception {
        PromptRecord r = new PromptRecord("prompts", 2, 99L, "k".getBytes(StandardCharsets.UTF_8), new byte[] {1, 2, (byte) 0xFF});
        assertThat(roundTrip(PromptRecord.class, r)).isEqualTo(r);
        PromptRecord tombstone = new PromptRecord("prompts", 0, 0L, null, null);
        assertThat(roundTrip(PromptRecord.class, tombstone)).isEqualTo(tombstone);
    }

    @Test
    void outputRecordIsAPojoAndRoundTripsWithNulls() throws Exception {
        OutputRecord r = new OutputRecord(OutputRecord.Kind.RESULT, new byte[] {7}, "{}".getBytes(StandardCharsets.UTF_8), "id-1");
        assertThat(roundTrip(OutputRecord.class, r)).isEqualTo(r);
        OutputRecord e = new OutputRecord(OutputRecord.Kind.ERROR, null, "{}".getBytes(StandardCharsets.UTF_8), null);
        assertThat(roundTrip(OutputRecord.class, e)).isEqualTo(e);
        OutputRecord withFailure = OutputRecord.error(new byte[] {1}, "{}".getBytes(StandardCharsets.UTF_8), "id-2",
                new OutputRecord.Failure(io.xpuflow.operators.ErrorCode.OUTPUT_TOO_LARGE, "m",
                        new io.xpuflow.connector.records.SourceCoordinates("t", 1, 2L)));
        assertThat(roundTrip(OutputRecord.class, withFailure)).isEqualTo(withFailure);
        OutputRecord withoutSource = OutputRecord.error(null, new byte[0], null,
                new OutputRecord.Failure(io.xpuflow.operators.ErrorCode.INVALID_JSON, null, null));
        assertThat(roundTrip(OutputRecord.class, withoutSource)).isEqualTo(withoutSource);
    }

    @Test
    void headersRoundTripInOrderWithoutKryo() throws Exception {
        KafkaHeader[] hs = {KafkaHeader.of("traceparent", "00-abc-01"), new KafkaHeader("empty", null),
                new KafkaHeader("bin", new byte[] {0, (byte) 0xFF}), KafkaHeader.of("traceparent", "again")};
        PromptRecord p = new PromptRecord("prompts", 1, 5L, null, new byte[] {1}, hs);
        assertThat(roundTrip(PromptRecord.class, p).headers()).containsExactly(hs);
        OutputRecord r = OutputRecord.result(null, new byte[] {2}, "id", hs);
        assertThat(roundTrip(OutputRecord.class, r).headers()).containsExactly(hs);
        OutputRecord e = OutputRecord.error(null, new byte[] {3}, "id", new OutputRecord.Failure(
                io.xpuflow.operators.ErrorCode.INVALID_JSON, "m", null), hs);
        assertThat(roundTrip(OutputRecord.class, e)).isEqualTo(e);
    }
}
