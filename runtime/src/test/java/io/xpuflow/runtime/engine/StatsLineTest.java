package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.testutil.Fixtures;
import io.xpuflow.runtime.testutil.StderrLog;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class StatsLineTest {
    private static final long SECOND = 1_000_000_000L;

    /** A snapshot with the fields the line reads; the rest zero. */
    private static EngineMetrics m(int running, int waiting, double kvUsage, long queried, long hits, long finished,
                                   long promptTokens, long outputTokens, long steps) {
        return new EngineMetrics(running, waiting, kvUsage, 0, 100, queried, hits, 0, finished, promptTokens,
                outputTokens, steps, 0, 0, 0, io.xpuflow.runtime.spec.SpecDecodeStats.Snapshot.NONE);
    }

    @Test
    void ratesComeFromTheDifferenceOverTheIntervalAndTheStateFromItsEnd() {
        StatsLine s = new StatsLine("m", Duration.ofSeconds(10), m(0, 0, 0, 100, 50, 0, 1000, 500, 10), 0);
        assertThat(s.due(9 * SECOND)).isFalse();
        assertThat(s.due(10 * SECOND)).isTrue();
        String line = s.next(m(3, 2, 0.125, 300, 100, 4, 1000 + 4000, 500 + 1234, 60), 10 * SECOND);
        assertThat(line).isEqualTo("Engine m: Avg prompt throughput: 400.0 tokens/s, Avg generation throughput:"
                + " 123.4 tokens/s, Running: 3 reqs, Waiting: 2 reqs, KV cache usage: 12.5%,"
                + " Prefix cache hit rate: 25.0%");
        // the next interval counts from the last line, and its hit rate is its own (nothing looked up: 0)
        assertThat(s.due(15 * SECOND)).isFalse();
        assertThat(s.next(m(0, 0, 0, 300, 100, 9, 5000, 1734 + 20, 70), 20 * SECOND))
                .endsWith("generation throughput: 2.0 tokens/s, Running: 0 reqs, Waiting: 0 reqs, KV cache usage: 0.0%,"
                        + " Prefix cache hit rate: 0.0%");
    }

    @Test
    void speculationAddsAcceptanceRateAndMeanAcceptedLengthOfTheInterval() {
        io.xpuflow.runtime.spec.SpecDecodeStats spec = new io.xpuflow.runtime.spec.SpecDecodeStats(3);
        spec.record(3, 3);
        EngineMetrics start = withSpec(m(1, 0, 0, 0, 0, 0, 10, 10, 5), spec.snapshot());
        StatsLine s = new StatsLine("m", Duration.ofSeconds(1), start, 0);
        spec.record(3, 1);
        spec.record(3, 2);
        spec.record(2, 0);
        // the interval's 8 drafts, 3 accepted, 3 verifications: 37.5%, 1 + 3 / 3 = 2.00 tokens per step
        assertThat(s.next(withSpec(m(1, 0, 0, 0, 0, 0, 10, 16, 8), spec.snapshot()), SECOND))
                .endsWith("Prefix cache hit rate: 0.0%, Draft acceptance rate: 37.5%, Mean accepted length: 2.00");
        // an interval without drafts keeps the plain line
        assertThat(s.next(withSpec(m(1, 0, 0, 0, 0, 0, 10, 17, 9), spec.snapshot()), 2 * SECOND))
                .endsWith("Prefix cache hit rate: 0.0%");
    }

    private static EngineMetrics withSpec(EngineMetrics m, io.xpuflow.runtime.spec.SpecDecodeStats.Snapshot spec) {
        return new EngineMetrics(m.running(), m.waiting(), m.kvUsage(), m.kvBlocksUsed(), m.kvBlocksTotal(),
                m.prefixCacheQueriedTokens(), m.prefixCacheHitTokens(), m.preemptions(), m.requestsFinished(),
                m.promptTokens(), m.outputTokens(), m.steps(), 0, 0, 0, spec);
    }

    @Test
    void anIdleIntervalLogsNothingAndDoesNotDiluteTheNext() {
        EngineMetrics idle = m(0, 0, 0, 0, 0, 5, 100, 100, 7);
        StatsLine s = new StatsLine("m", Duration.ofSeconds(1), idle, 0);
        assertThat(s.next(idle, SECOND)).isNull();
        assertThat(s.next(idle, 100 * SECOND)).isNull();
        // work resumes: its rate is over the second since the last (idle) check, not over the idle minutes
        assertThat(s.next(m(0, 0, 0, 0, 0, 6, 100, 150, 9), 101 * SECOND))
                .contains("Avg generation throughput: 50.0 tokens/s");
        // a request waiting for KV blocks is work even when no step ran
        assertThat(s.next(m(0, 1, 0, 0, 0, 6, 100, 150, 9), 102 * SECOND)).contains("Waiting: 1 reqs");
    }

    @Test
    void theIntervalMustBePositive() {
        EngineMetrics zero = m(0, 0, 0, 0, 0, 0, 0, 0, 0);
        assertThatThrownBy(() -> new StatsLine("m", Duration.ZERO, zero, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> EngineOptions.builder(Fixtures.model("stories260k"))
                .logStatsInterval(Duration.ofSeconds(-1)).build()).isInstanceOf(IllegalArgumentException.class);
    }

    private static final Pattern LINE = Pattern.compile("Engine stories260k: Avg prompt throughput: (\\d+\\.\\d) tokens/s,"
            + " Avg generation throughput: (\\d+\\.\\d) tokens/s, Running: (\\d+) reqs, Waiting: (\\d+) reqs,"
            + " KV cache usage: (\\d+\\.\\d)%, Prefix cache hit rate: (\\d+\\.\\d)%");

    @Test
    void theEngineLogsALinePerIntervalWhileItWorksAndNoneWhenIdle() throws Exception {
        EngineOptions options = EngineOptions.builder(Fixtures.model("stories260k")).threads(1).maxNumSeqs(2)
                .logStatsInterval(Duration.ofMillis(100)).build();
        try (StderrLog log = new StderrLog(); LlmEngine engine = LlmEngine.open(options)) {
            // 6 requests of 100 tokens, 2 at a time, each token held 1 ms by its listener (on the loop thread):
            // about 600 ms of work, so lines fall while 2 run and 4 wait
            List<GenerationHandle> handles = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                handles.add(engine.submit(GenerationRequest.ofText("s" + i, "Once upon a time",
                        SamplingParams.builder().maxTokens(100).ignoreEos(true).build()), (id, text) -> sleep(1)));
            }
            for (GenerationHandle h : handles) {
                h.result().get(60, TimeUnit.SECONDS);
            }
            // the interval in which the work ended gets its line: due 100 ms after the last, written within 200 ms
            // by the idle loop (with room for a slow machine)
            Thread.sleep(700);
            List<String> lines = log.lines("Engine stories260k: Avg");
            assertThat(lines).hasSizeGreaterThanOrEqualTo(3);
            List<Matcher> parsed = lines.stream().map(l -> {
                Matcher matcher = LINE.matcher(l);
                assertThat(matcher.find()).as(l).isTrue();
                return matcher;
            }).toList();
            assertThat(parsed).allSatisfy(p -> {
                assertThat(Integer.parseInt(p.group(3))).isBetween(0, 2);
                assertThat(Integer.parseInt(p.group(3)) + Integer.parseInt(p.group(4))).isBetween(0, 6);
            });
            assertThat(parsed).as("a line while the engine was full").anySatisfy(p -> {
                assertThat(p.group(3)).isEqualTo("2");
                assertThat(Integer.parseInt(p.group(4))).isPositive();
                assertThat(Double.parseDouble(p.group(2))).isPositive();
            });
            Matcher last = parsed.get(parsed.size() - 1);
            assertThat(last.group(0)).as("the last line shows the engine drained")
                    .contains("Running: 0 reqs, Waiting: 0 reqs, KV cache usage: 0.0%");

            Thread.sleep(500); // five idle intervals
            assertThat(log.lines("Engine stories260k: Avg")).as("no lines while idle").hasSize(lines.size());
        }
    }

    @Test
    void zeroTurnsTheLineOff() throws Exception {
        EngineOptions options = EngineOptions.builder(Fixtures.model("stories260k")).threads(1)
                .logStatsInterval(Duration.ZERO).build();
        try (StderrLog log = new StderrLog(); LlmEngine engine = LlmEngine.open(options)) {
            engine.submit(GenerationRequest.ofText("z", "Once upon a time",
                    SamplingParams.builder().maxTokens(20).ignoreEos(true).build()), (id, text) -> sleep(10))
                    .result().get(60, TimeUnit.SECONDS);
            assertThat(log.lines("Avg prompt throughput")).isEmpty();
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
