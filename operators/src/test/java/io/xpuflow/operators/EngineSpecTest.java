package io.xpuflow.operators;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.engine.EngineOptions;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The spec Flink ships to TaskManagers: serialization, equality (engine sharing) and the options it opens. */
class EngineSpecTest {
    private static final EngineSpec FAST = EngineSpec.of("/models/m").withThreads(3).withKvCacheBytes(64L << 20)
            .withMaxNumSeqs(8).withMaxNumBatchedTokens(128).withMaxModelLen(512).withWeightFormat(WeightFormat.BF16)
            .withKvCacheDtype(KvCacheDtype.BF16).withLogStatsInterval(Duration.ofSeconds(2));

    @Test
    void survivesJavaSerializationAsAnEqualSpec() throws Exception {
        for (EngineSpec spec : new EngineSpec[] {FAST, EngineSpec.of("/models/m"),
                EngineSpec.of("/models/m").withWeightFormat(WeightFormat.INT8)}) {
            EngineSpec back = roundTrip(spec);
            assertThat(back).isEqualTo(spec).hasSameHashCodeAs(spec);
            // equal specs open equal options, the key under which a TaskManager's engine is shared
            assertThat(back.toOptions()).isEqualTo(spec.toOptions()).hasSameHashCodeAs(spec.toOptions());
        }
    }

    @Test
    void theFormatsReachTheEngineOptionsAndSeparateEngines() {
        EngineOptions o = FAST.toOptions();
        assertThat(o.modelDir()).isEqualTo(Path.of("/models/m"));
        assertThat(o.threads()).isEqualTo(3);
        assertThat(o.kvCacheBytes()).isEqualTo(64L << 20);
        assertThat(o.maxNumSeqs()).isEqualTo(8);
        assertThat(o.maxNumBatchedTokens()).isEqualTo(128);
        assertThat(o.maxModelLen()).isEqualTo(512);
        assertThat(o.weightFormat()).isEqualTo(WeightFormat.BF16);
        assertThat(o.kvCacheDtype()).isEqualTo(KvCacheDtype.BF16);
        assertThat(o.logStatsInterval()).isEqualTo(Duration.ofSeconds(2));

        // auto (null) is the default, and a different format is a different engine
        EngineSpec auto = EngineSpec.of("/models/m");
        assertThat(auto.weightFormat()).isNull();
        assertThat(auto.kvCacheDtype()).isNull();
        assertThat(auto.withWeightFormat(WeightFormat.EXACT)).isNotEqualTo(auto);
        assertThat(auto.withKvCacheDtype(KvCacheDtype.F32).toOptions()).isNotEqualTo(auto.toOptions());
        assertThat(FAST.withWeightFormat(null).withKvCacheDtype(null)).isEqualTo(auto.withThreads(3)
                .withKvCacheBytes(64L << 20).withMaxNumSeqs(8).withMaxNumBatchedTokens(128).withMaxModelLen(512)
                .withLogStatsInterval(Duration.ofSeconds(2)));
        // the stats line every 10 s by default, also from the constructor without an interval (the SQL options')
        assertThat(auto.logStatsInterval()).isEqualTo(Duration.ofSeconds(10));
        assertThat(new EngineSpec("/models/m", 0, 512L << 20, 64, 256, 0, null, null)).isEqualTo(auto);
    }

    @Test
    void outOfRangeSettingsAreRefusedWhenTheSpecIsMade() {
        assertThatThrownBy(() -> EngineSpec.of("/models/m").withMaxNumSeqs(0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("max_num_seqs");
        assertThatThrownBy(() -> EngineSpec.of(" ")).isInstanceOf(IllegalArgumentException.class);
    }

    private static EngineSpec roundTrip(EngineSpec spec) throws IOException, ClassNotFoundException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(spec);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            return (EngineSpec) in.readObject();
        }
    }
}
