package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class EngineRegistryTest {
    private final AtomicInteger opened = new AtomicInteger();
    private final EngineRegistry registry = new EngineRegistry(o -> {
        opened.incrementAndGet();
        return LlmEngine.open(o);
    });
    private final EngineOptions options = EngineOptions.builder(Fixtures.model("stories260k")).threads(1)
            .kvCacheBytes(8 << 20).build();

    @Test
    void concurrentUsersShareOneEngineUntilTheLastReleases() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<EngineRegistry.Lease>> leases = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            leases.add(pool.submit(() -> {
                go.await();
                return registry.lease(EngineOptions.builder(Fixtures.model("stories260k").resolve("."))
                        .threads(1).kvCacheBytes(8 << 20).build());
            }));
        }
        go.countDown();
        List<EngineRegistry.Lease> held = new ArrayList<>();
        for (Future<EngineRegistry.Lease> f : leases) {
            held.add(f.get());
        }
        pool.shutdown();
        assertThat(opened).hasValue(1);
        LlmEngine engine = held.get(0).engine();
        assertThat(held).allSatisfy(l -> assertThat(l.engine()).isSameAs(engine));
        assertThat(registry.users(options)).isEqualTo(4);

        held.get(0).close();
        held.get(0).close(); // a second close releases nothing more
        assertThat(registry.users(options)).isEqualTo(3);
        assertThat(held.get(1).engine().submit(GenerationRequest.ofTokens("x", new int[] {1}, SamplingParams.greedy(3)))
                .result().join().tokenIds()).hasSize(3);
        held.subList(1, 4).forEach(EngineRegistry.Lease::close);
        assertThat(registry.users(options)).isZero();
        assertThatThrownBy(() -> engine.submit(GenerationRequest.ofTokens("y", new int[] {1}, SamplingParams.greedy(1))))
                .isInstanceOf(GenerationException.class).hasMessageContaining("closed");
        assertThatThrownBy(() -> held.get(1).engine()).isInstanceOf(IllegalStateException.class);

        try (EngineRegistry.Lease again = registry.lease(options)) {
            assertThat(again.engine()).isNotSameAs(engine);
        }
        assertThat(opened).hasValue(2);
    }

    @Test
    void aFailedEngineIsEvictedAndItsLeasesMoveToAFreshOne() throws InterruptedException {
        EngineRegistry.Lease a = registry.lease(options);
        EngineRegistry.Lease b = registry.lease(options);
        LlmEngine failed = a.engine();
        EngineFaults.breakDevice(failed);
        GenerationException e = RequestIsolationTest.failureOf(failed.submit(
                GenerationRequest.ofTokens("doomed", new int[] {1}, SamplingParams.greedy(3))));
        assertThat(e.code()).isEqualTo(GenerationException.Code.ENGINE_ERROR);
        assertThat(failed.isServing()).isFalse();

        // a new user gets a fresh engine, not the dead one
        try (EngineRegistry.Lease c = registry.lease(options)) {
            LlmEngine fresh = c.engine();
            assertThat(fresh).isNotSameAs(failed);
            assertThat(fresh.isServing()).isTrue();
            assertThat(opened).hasValue(2);
            assertThat(registry.users(options)).isEqualTo(1);
            // holders of the old lease move on: by engine(), or by submitting through the lease
            assertThat(a.engine()).isSameAs(fresh);
            assertThat(b.submit(GenerationRequest.ofTokens("moved", new int[] {1}, SamplingParams.greedy(3)))
                    .result().join().tokenIds()).hasSize(3);
            assertThat(b.engine()).isSameAs(fresh);
            // what gauges read through the lease is the fresh engine's (the failed one finished nothing)
            assertThat(failed.metrics().requestsFinished()).isZero();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (b.metrics().requestsFinished() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(b.metrics().requestsFinished()).isEqualTo(1);
            assertThat(registry.users(options)).isEqualTo(3);
            assertThat(opened).hasValue(2);
            a.close();
            b.close();
            assertThat(fresh.isServing()).isTrue(); // c still holds it
        }
        assertThat(registry.users(options)).isZero();
        assertThatThrownBy(() -> failed.submit(GenerationRequest.ofTokens("z", new int[] {1}, SamplingParams.greedy(1))))
                .isInstanceOf(GenerationException.class);
    }

    @Test
    void anEngineClosedUnderItsLeasesIsReplacedToo() {
        try (EngineRegistry.Lease a = registry.lease(options)) {
            LlmEngine first = a.engine();
            first.close(); // someone closed the shared engine directly
            LlmEngine second = a.engine();
            assertThat(second).isNotSameAs(first);
            assertThat(second.submit(GenerationRequest.ofTokens("x", new int[] {1}, SamplingParams.greedy(2)))
                    .result().join().tokenIds()).hasSize(2);
            assertThat(registry.users(options)).isEqualTo(1);
        }
        assertThat(opened).hasValue(2);
        assertThat(registry.users(options)).isZero();
    }

    @Test
    void differentOptionsGetDifferentEngines() {
        try (EngineRegistry.Lease a = registry.lease(options);
             EngineRegistry.Lease b = registry.lease(options.toBuilder().maxNumSeqs(8).build())) {
            assertThat(a.engine()).isNotSameAs(b.engine());
        }
    }

    @Test
    void aFailedOpenLeavesNothingBehind() {
        EngineOptions bad = EngineOptions.builder(Fixtures.model("stories260k").resolve("missing")).build();
        assertThatThrownBy(() -> registry.lease(bad)).isInstanceOf(RuntimeException.class);
        assertThat(registry.users(bad)).isZero();
    }
}
