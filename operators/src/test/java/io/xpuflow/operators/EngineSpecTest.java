package io.xpuflow.operators;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
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

    @Test
    void speculativeDecodingIsCarriedAndSeparatesEngines() throws Exception {
        EngineSpec plain = EngineSpec.of("/models/m");
        assertThat(plain.speculative()).isEqualTo(SpeculativeConfig.NONE);
        EngineSpec mtp = plain.withSpeculative(SpeculativeConfig.mtp(2));
        EngineSpec fixed = plain.withSpeculative(SpeculativeConfig.mtp(2).withAdaptive(false));
        EngineSpec ngram = plain.withSpeculative(SpeculativeConfig.ngram(3));
        assertThat(mtp.toOptions().speculative()).isEqualTo(SpeculativeConfig.mtp(2));
        assertThat(fixed.toOptions().speculative().adaptive()).isFalse();
        assertThat(ngram.speculative()).isEqualTo(SpeculativeConfig.ngram(3));
        assertThat(List.of(plain, mtp, fixed, ngram, plain.withSpeculative(SpeculativeConfig.mtp(3))))
                .doesNotHaveDuplicates();
        for (EngineSpec spec : List.of(mtp, fixed, ngram)) {
            EngineSpec back = roundTrip(spec);
            assertThat(back).isEqualTo(spec);
            assertThat(back.toOptions()).isEqualTo(spec.toOptions());
            // the surfaces build their spec from engine options: the speculative settings survive that
            assertThat(EngineSpec.of("/models/m", spec.toOptions())).isEqualTo(spec);
        }
        // without a method, k and adaptivity mean nothing: every such spec is the one engine without speculation
        assertThat(new EngineSpec("/models/m", 0, 512L << 20, 64, 256, 0, null, null, Duration.ofSeconds(10),
                SpeculativeConfig.Method.NONE, 3, true)).isEqualTo(plain);
        assertThat(new EngineSpec("/models/m", 0, 512L << 20, 64, 256, 0, null, null, Duration.ofSeconds(10),
                null, 0, false)).isEqualTo(plain);
        assertThatThrownBy(() -> new EngineSpec("/models/m", 0, 512L << 20, 64, 256, 0, null, null,
                Duration.ofSeconds(10), SpeculativeConfig.Method.MTP, 5, true))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'num-speculative-tokens'");
    }

    @Test
    void theBuilderCombinesTheThreeSpeculativeOptions() {
        EngineOptions.Builder b = EngineOptions.builder(Path.of("/models/m"));
        assertThat(b.build().speculative()).isEqualTo(SpeculativeConfig.NONE);
        // k and adaptivity set before the method (options come in any order) still count
        assertThat(b.numSpeculativeTokens(3).speculativeAdaptive(false).build().speculative())
                .as("no method: off").isEqualTo(SpeculativeConfig.NONE);
        assertThat(b.speculativeMethod(SpeculativeConfig.Method.NGRAM).build().speculative())
                .isEqualTo(SpeculativeConfig.ngram(3).withAdaptive(false));
        // the default k is 2, adaptive
        assertThat(EngineOptions.builder(Path.of("/models/m")).speculativeMethod(SpeculativeConfig.Method.MTP).build()
                .speculative()).isEqualTo(SpeculativeConfig.mtp(2));
        // the rule of two options: k must be in [1, 4] only once a method needs it
        assertThatThrownBy(() -> EngineOptions.builder(Path.of("/models/m")).speculativeMethod(SpeculativeConfig.Method.MTP)
                .numSpeculativeTokens(0).build()).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'num-speculative-tokens' must be in [1, 4] with speculative method mtp, was 0");
        // toBuilder keeps a config, with its n-gram sizes
        EngineOptions custom = EngineOptions.builder(Path.of("/models/m"))
                .speculative(SpeculativeConfig.ngram(2).withNgram(2, 5)).build();
        assertThat(custom.toBuilder().build()).isEqualTo(custom);
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
