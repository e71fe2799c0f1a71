package io.xpuflow.operators;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.operators.testutil.ReportedMetrics;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.JobID;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.Meter;
import org.apache.flink.metrics.Metric;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The operator's metrics as a Flink metric reporter sees them, summed over the subtasks of a job. */
class InferenceMetricsTest {
    static final ReportedMetrics REPORTED = new ReportedMetrics();

    @RegisterExtension
    static final MiniClusterExtension MINI = REPORTED.miniCluster(2);

    /** Outputs are "id|completion tokens|finish|prompt tokens|engine total ms" or "id|ERROR CODE". */
    static final ResultMapper<String, String> FORMAT = new ResultMapper<>() {
        @Override
        public String onResult(String element, GenerationResult r) {
            return r.id() + "|" + r.usage().completionTokens() + "|" + r.finishReason().wireName() + "|"
                    + r.usage().promptTokens() + "|" + r.timings().totalMs();
        }

        @Override
        public String onError(String element, String requestId, ErrorCode code, String message) {
            return requestId + "|ERROR " + code;
        }
    };

    private static List<Metric> metrics(JobID job, String name) {
        return REPORTED.all(job, name);
    }

    /** The sum over both subtasks. */
    private static long count(JobID job, String name) {
        assertThat(metrics(job, name)).as(name).hasSize(2);
        return REPORTED.sum(job, name);
    }

    @Test
    void countersHistogramsAndGaugesDescribeWhatTheJobDid() throws Exception {
        List<String> input = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            input.add("q" + i + "|" + (1 + i % 6) + "|Once upon a time " + i);
        }
        input.add("no-fields");
        input.add("bad|many|Lily");
        input.add("long|5|" + "Once upon a time there was a little girl named Lily. ".repeat(60));
        LlmAsyncFunctionTest.Run run = LlmAsyncFunctionTest.runJob(input, new LlmAsyncFunction<>(LlmAsyncFunctionTest.SPEC,
                LlmAsyncFunctionTest.PARSE, FORMAT, LlmAsyncFunction.TimeoutPolicy.EMIT_ERROR), 60_000);

        List<String> completions = run.outputs().stream().filter(o -> !o.contains("|ERROR ")).toList();
        assertThat(completions).hasSize(12);
        long tokens = completions.stream().mapToLong(o -> Long.parseLong(o.split("\\|")[1])).sum();
        long multiToken = completions.stream().filter(o -> Long.parseLong(o.split("\\|")[1]) > 1).count();
        long promptTokens = completions.stream().mapToLong(o -> Long.parseLong(o.split("\\|")[3])).sum();
        long stopped = completions.stream().filter(o -> o.split("\\|")[2].equals("stop")).count();
        double slowest = completions.stream().mapToDouble(o -> Double.parseDouble(o.split("\\|")[4])).max().orElseThrow();

        JobID job = run.job();
        assertThat(count(job, "requests")).isEqualTo(12);
        assertThat(count(job, "outputTokens")).isEqualTo(tokens);
        assertThat(count(job, "promptTokens")).isEqualTo(promptTokens);
        assertThat(count(job, "finishReason.stop")).isEqualTo(stopped);
        assertThat(count(job, "finishReason.length")).isEqualTo(12 - stopped);
        assertThat(count(job, "finishReason.cancelled")).isZero();
        assertThat(count(job, "finishReason.error")).isEqualTo(3);
        assertThat(count(job, "e2eLatencyMs")).isEqualTo(12);
        assertThat(count(job, "queueTimeUs")).isEqualTo(12);
        // from the element's arrival to its output: at least the engine's own time for the request
        assertThat(metrics(job, "e2eLatencyMs").stream().mapToLong(m -> ((Histogram) m).getStatistics().getMax()).max()
                .orElseThrow()).isGreaterThanOrEqualTo((long) Math.floor(slowest));
        assertThat(count(job, "timeToFirstTokenUs")).isEqualTo(12);
        assertThat(count(job, "timePerOutputTokenUs")).isEqualTo(multiToken);
        assertThat(metrics(job, "timeToFirstTokenUs")).allSatisfy(m -> {
            Histogram h = (Histogram) m;
            if (h.getCount() > 0) {
                assertThat(h.getStatistics().getMin()).as("a first token takes some microseconds").isPositive();
            }
        });
        assertThat(count(job, "errors.MISSING_FIELD")).isEqualTo(1);
        assertThat(count(job, "errors.INVALID_PARAM")).isEqualTo(1);
        assertThat(count(job, "errors.PROMPT_TOO_LONG")).isEqualTo(1);
        assertThat(count(job, "errors.TIMEOUT")).isZero();
        assertThat(count(job, "errorsTotal")).isEqualTo(3);
        assertThat(metrics(job, "outputTokensPerSecond")).hasSize(2).allSatisfy(m -> assertThat(m).isInstanceOf(Meter.class));
        for (String gauge : List.of("requestsRunning", "requestsWaiting", "kvCacheUsage", "prefixCacheHitRate", "preemptions")) {
            assertThat(metrics(job, gauge)).as(gauge).hasSize(2).allSatisfy(m -> assertThat(m).isInstanceOf(Gauge.class));
        }
        // the job's engine does not speculate: its speculative-decoding gauges are there, at zero
        for (String gauge : List.of("specDecodeDraftTokens", "specDecodeAcceptedTokens", "specDecodeVerificationSteps",
                "specDecodeAcceptanceRate", "specDecodeMeanAcceptanceLengthTokens", "specDecodeAcceptanceRatePos0",
                "specDecodeAcceptanceRatePos3")) {
            assertThat(metrics(job, gauge)).as(gauge).hasSize(2).allSatisfy(m ->
                    assertThat(((Number) ((Gauge<?>) m).getValue()).doubleValue()).isZero());
        }
        assertThat(metrics(job, "kvCacheUsage")).allSatisfy(m ->
                assertThat(((Number) ((Gauge<?>) m).getValue()).doubleValue()).isBetween(0.0, 1.0));
    }

    @Test
    void aTimedOutRequestCountsAsATimeoutAndNotAsACompletion() throws Exception {
        RequestMapper<String> endless = s -> GenerationRequest.ofText(s, "Once upon a time",
                SamplingParams.builder().maxTokens(500).ignoreEos(true).build());
        LlmAsyncFunctionTest.Run run = LlmAsyncFunctionTest.runJob(List.of("t"), new LlmAsyncFunction<>(
                LlmAsyncFunctionTest.SPEC.withMaxModelLen(512), endless, FORMAT, LlmAsyncFunction.TimeoutPolicy.EMIT_ERROR), 5);
        assertThat(run.outputs()).containsExactly("t|ERROR TIMEOUT");
        assertThat(count(run.job(), "errors.TIMEOUT")).isEqualTo(1);
        assertThat(count(run.job(), "errorsTotal")).isEqualTo(1);
        assertThat(count(run.job(), "requests")).isEqualTo(1);
        // the request was cancelled after the timeout answered the element: its partial result is not counted
        assertThat(count(run.job(), "outputTokens")).isZero();
        assertThat(count(run.job(), "timeToFirstTokenUs")).isZero();
        assertThat(count(run.job(), "e2eLatencyMs")).isZero();
        assertThat(count(run.job(), "finishReason.error")).isEqualTo(1);
        assertThat(count(run.job(), "finishReason.cancelled")).isZero();
    }
}
