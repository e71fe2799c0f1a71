package io.xpuflow.connector.sql;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.operators.EngineSpec;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.GenerationFailure;
import io.xpuflow.operators.InferenceMetrics;
import io.xpuflow.runtime.engine.EngineFaults;
import io.xpuflow.runtime.engine.EngineRegistry;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.spec.SpecDecodeStats;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.metrics.testutils.MetricListener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the SQL functions use of the shared engine survives the engine failing under it. */
class EngineClientTest {
    static final EngineSpec SPEC = EngineSpec.of(Fixtures.model("stories260k").toString()).withThreads(1)
            .withKvCacheBytes(10 << 20);

    @Test
    void theSqlFunctionsRegisterTheSpeculativeDecodingGaugesOfTheirEngine() {
        MetricListener listener = new MetricListener();
        try (EngineClient client = EngineClient.open(SPEC, "test", listener.getMetricGroup())) {
            client.generate("Once upon a time", SamplingParams.greedy(3)).orTimeout(60, TimeUnit.SECONDS).join();
            SpecDecodeStats.Snapshot engine;
            try (EngineRegistry.Lease lease = EngineRegistry.acquire(SPEC.toOptions())) {
                engine = lease.metrics().speculative();
            }
            assertThat(gauge(listener, "specDecodeDraftTokens")).isEqualTo(engine.draftTokens());
            assertThat(gauge(listener, "specDecodeAcceptedTokens")).isEqualTo(engine.acceptedTokens());
            assertThat(gauge(listener, "specDecodeVerificationSteps")).isEqualTo(engine.verificationSteps());
            assertThat(gauge(listener, "specDecodeAcceptanceRate")).isEqualTo(engine.acceptanceRate());
            assertThat(gauge(listener, "specDecodeMeanAcceptanceLengthTokens")).isEqualTo(engine.meanAcceptedLength());
            for (int i = 0; i < SpeculativeConfig.MAX_SPECULATIVE_TOKENS; i++) {
                assertThat(gauge(listener, "specDecodeAcceptanceRatePos" + i)).isEqualTo(0.0); // no speculation
            }
        }
    }

    private static Object gauge(MetricListener listener, String name) {
        return listener.<Object>getGauge(InferenceMetrics.GROUP, name)
                .orElseThrow(() -> new AssertionError("no gauge " + name)).getValue();
    }

    @Test
    void afterAFailureOfTheSharedEngineLaterRowsAreServedByAFreshOne() {
        SamplingParams p = SamplingParams.greedy(5);
        try (EngineClient client = EngineClient.open(SPEC, "test", new UnregisteredMetricsGroup())) {
            GenerationResult before = client.generate("Once upon a time", p).orTimeout(60, TimeUnit.SECONDS).join();
            try (EngineRegistry.Lease other = EngineRegistry.acquire(SPEC.toOptions())) {
                EngineFaults.breakDevice(other.engine()); // the engine this client holds as well
            }
            Throwable failed = client.generate("Once upon a time", p).handle((r, e) -> e)
                    .orTimeout(60, TimeUnit.SECONDS).join();
            assertThat(failed).isNotNull();
            assertThat(GenerationFailure.of(failed).code()).isEqualTo(ErrorCode.ENGINE_ERROR);

            GenerationResult after = client.generate("Once upon a time", p).orTimeout(60, TimeUnit.SECONDS).join();
            assertThat(after.text()).isEqualTo(before.text());
            assertThat(EngineRegistry.shared().users(SPEC.toOptions())).isEqualTo(1); // the client, moved over
        }
        assertThat(EngineRegistry.shared().users(SPEC.toOptions())).isZero();
    }

    @Test
    void noFreshEngineToMoveToIsAnEngineErrorUntilOneOpens(@TempDir Path tmp) throws IOException {
        Path model = tmp.resolve("model");
        copy(Fixtures.model("stories260k"), model);
        EngineSpec spec = EngineSpec.of(model.toString()).withThreads(1).withKvCacheBytes(10 << 20);
        SamplingParams p = SamplingParams.greedy(5);
        try (EngineClient client = EngineClient.open(spec, "test", new UnregisteredMetricsGroup())) {
            String before = client.generate("Lily", p).orTimeout(60, TimeUnit.SECONDS).join().text();
            try (EngineRegistry.Lease other = EngineRegistry.acquire(spec.toOptions())) {
                EngineFaults.breakDevice(other.engine());
            }
            client.generate("Lily", p).handle((r, e) -> e).orTimeout(60, TimeUnit.SECONDS).join(); // meets the failure
            Path away = tmp.resolve("away");
            Files.move(model, away);
            // the fresh engine cannot open: ours, not the row's, so ENGINE_ERROR (and no exception out of generate)
            Throwable e = client.generate("Lily", p).handle((r, x) -> x).orTimeout(60, TimeUnit.SECONDS).join();
            assertThat(GenerationFailure.of(e).code()).isEqualTo(ErrorCode.ENGINE_ERROR);
            assertThat(GenerationFailure.of(e).message()).contains("could not submit");
            Files.move(away, model);
            assertThat(client.generate("Lily", p).orTimeout(60, TimeUnit.SECONDS).join().text()).isEqualTo(before);
        }
        assertThat(EngineRegistry.shared().users(spec.toOptions())).isZero();
    }

    private static void copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> files = Files.list(from)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (Files.isRegularFile(f)) {
                    Files.copy(f, to.resolve(f.getFileName()));
                }
            }
        }
    }
}
