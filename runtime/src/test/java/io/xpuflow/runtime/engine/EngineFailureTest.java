package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** An engine whose device fails stops serving as a whole, fails what is pending and says why. */
class EngineFailureTest {
    static final EngineOptions OPTIONS = EngineOptions.builder(Fixtures.model("stories260k")).threads(1)
            .kvCacheBytes(8 << 20).build();

    static GenerationRequest longRequest(String id) {
        return GenerationRequest.ofTokens(id, new int[] {1, 400, 300}, SamplingParams.builder().maxTokens(2000)
                .ignoreEos(true).build());
    }

    @Test
    void aFailedDeviceStepFailsTheEngineAndEveryPendingRequest() throws Exception {
        LlmEngine engine = LlmEngine.open(OPTIONS.toBuilder().maxModelLen(2048).build());
        try {
            CountDownLatch running = new CountDownLatch(2);
            GenerationHandle a = engine.submit(longRequest("a"), (id, text) -> running.countDown());
            GenerationHandle b = engine.submit(longRequest("b"), (id, text) -> running.countDown());
            assertThat(running.await(60, TimeUnit.SECONDS)).isTrue();

            EngineFaults.breakDevice(engine);

            for (GenerationHandle h : List.of(a, b)) {
                GenerationException e = RequestIsolationTest.failureOf(h);
                assertThat(e.code()).isEqualTo(GenerationException.Code.ENGINE_ERROR);
                assertThat(e).hasMessageContainingAll("engine failed", "device step", "device model is closed");
            }
            assertThat(engine.isServing()).isFalse();
            assertThat(engine.failure()).get().asString().contains("device step over");
            assertThatThrownBy(() -> engine.submit(longRequest("after")))
                    .isInstanceOfSatisfying(GenerationException.class, e -> assertThat(e.code())
                            .isEqualTo(GenerationException.Code.ENGINE_ERROR))
                    .hasMessageContainingAll("after", "failed and serves no more requests", "device model is closed");
            assertThat(engine.metrics().running()).isZero();
            assertThat(engine.metrics().waiting()).isZero();
        } finally {
            engine.close(); // after the failure freed the native memory: must not free it twice
            engine.close();
        }
        assertThat(engine.failure()).isPresent(); // close keeps the reason
    }

    @Test
    void aClosedEngineIsNotServingAndHasNoFailure() {
        LlmEngine engine = LlmEngine.open(OPTIONS);
        assertThat(engine.isServing()).isTrue();
        engine.close();
        assertThat(engine.isServing()).isFalse();
        assertThat(engine.failure()).isEmpty();
        assertThatThrownBy(() -> engine.submit(longRequest("x"))).isInstanceOfSatisfying(GenerationException.class,
                e -> assertThat(e.code()).isEqualTo(GenerationException.Code.ENGINE_CLOSED));
    }
}
