package io.xpuflow.operators.testutil;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.operators.InferenceMetrics;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.Metric;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.testutils.InMemoryReporter;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.test.junit5.MiniClusterExtension;

/**
 * The {@link InferenceMetrics} of a job as a Flink metric reporter sees them: an in-memory reporter
 * installed in a MiniCluster, kept after the job ends, and lookups by metric name over every subtask.
 */
public final class ReportedMetrics {
    private final InMemoryReporter reporter = InMemoryReporter.createWithRetainedMetrics();

    /** A MiniCluster of one TaskManager with {@code slots} slots that reports to this. */
    public MiniClusterExtension miniCluster(int slots) {
        return new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
                .setConfiguration(reporter.addToConfiguration(new Configuration()))
                .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(slots).build());
    }

    /** The metrics {@code xpuflow.<name>} (e.g. {@code errors.TIMEOUT}) that subtasks of {@code job} registered. */
    public List<Metric> all(JobID job, String name) {
        // by group: the reporter's by-identifier view fails on Flink's duplicate operator identifiers
        String suffix = "." + InferenceMetrics.GROUP + "." + name;
        List<Metric> found = new ArrayList<>();
        for (Map.Entry<MetricGroup, Map<String, Metric>> group : reporter.getMetricsByGroup().entrySet()) {
            if (job.toString().equals(group.getKey().getAllVariables().get("<job_id>"))) {
                group.getValue().forEach((metricName, metric) -> {
                    if (group.getKey().getMetricIdentifier(metricName).endsWith(suffix)) {
                        found.add(metric);
                    }
                });
            }
        }
        return found;
    }

    /**
     * The sum over the job's subtasks of counter {@code xpuflow.<name>}, or of a histogram's counts; fails
     * when no subtask registered it.
     */
    public long sum(JobID job, String name) {
        List<Metric> found = all(job, name);
        assertThat(found).as("xpuflow.%s registrations", name).isNotEmpty();
        return found.stream().mapToLong(m -> m instanceof Histogram h ? h.getCount() : ((Counter) m).getCount()).sum();
    }
}
