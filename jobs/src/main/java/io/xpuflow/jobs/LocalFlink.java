package io.xpuflow.jobs;

import java.net.InetAddress;
import org.apache.flink.configuration.BlobServerOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.configuration.WebOptions;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * The one place that starts a local Flink (a MiniCluster inside this JVM) for our programs: the local
 * {@link KafkaInferenceJob}, {@code xpuflow demo} and {@code bench pipeline}.
 *
 * <p>Flink's defaults bind the REST API (job submission and cancellation, no authentication) and the
 * BLOB server (job jars and artifacts) to the wildcard address, so a local run on a laptop or a shared
 * host would answer anyone on the network. A local run has no client elsewhere, so everything is bound
 * to the loopback address here; a cluster deployment configures its own addresses (see the README).
 */
public final class LocalFlink {
    private LocalFlink() {}

    /**
     * Flink settings of every local run: REST API, BLOB server, JobManager and TaskManager bound to the
     * loopback address, the REST API on a free port (two local runs side by side do not clash on 8081), no
     * jar upload through the web UI.
     */
    public static Configuration loopbackConfiguration() {
        // the literal address, not "localhost": a hosts file may map that name to an interface address
        String loopback = InetAddress.getLoopbackAddress().getHostAddress();
        Configuration c = new Configuration();
        c.set(RestOptions.BIND_ADDRESS, loopback);
        c.set(RestOptions.ADDRESS, loopback);
        c.set(RestOptions.BIND_PORT, "0");
        // jobmanager.bind-host is also where the BLOB server listens (Flink has no option of its own for it)
        c.set(JobManagerOptions.BIND_HOST, loopback);
        c.set(JobManagerOptions.ADDRESS, loopback);
        c.set(BlobServerOptions.PORT, "0");
        // a MiniCluster's RPC is in-process and a single TaskManager exchanges data locally; these keep any
        // TaskManager endpoint Flink does open on loopback too
        c.set(TaskManagerOptions.BIND_HOST, loopback);
        c.set(TaskManagerOptions.HOST, loopback);
        // the CLI jar has Flink's web UI, whose REST extension would also take jar uploads and run them: a local
        // run gets its job from its own JVM, so the UI shows and cancels jobs only
        c.set(WebOptions.SUBMIT_ENABLE, false);
        return c;
    }

    /** A local environment of {@code parallelism} with {@link #loopbackConfiguration()} and then {@code settings}. */
    public static StreamExecutionEnvironment environment(int parallelism, Configuration settings) {
        Configuration c = loopbackConfiguration();
        c.addAll(settings);
        return StreamExecutionEnvironment.createLocalEnvironment(parallelism, c);
    }

    /**
     * Starts a MiniCluster of one TaskManager with {@code slots} slots, {@link #loopbackConfiguration()} and
     * then {@code settings}, its REST API (and Flink's web UI, which is on the class path of the CLI jar) on
     * {@code restPort} of the loopback address (0: a free port; {@link MiniCluster#getRestAddress()} tells
     * which). Unlike {@link #environment}, whose cluster lives and dies with one job and hides its address,
     * the caller submits jobs to it ({@link MiniCluster#submitJob}) and closes it.
     */
    public static MiniCluster startCluster(int slots, int restPort, Configuration settings) throws Exception {
        Configuration c = loopbackConfiguration();
        c.addAll(settings);
        c.set(RestOptions.BIND_PORT, Integer.toString(restPort));
        MiniCluster cluster = new MiniCluster(new MiniClusterConfiguration.Builder().setConfiguration(c)
                .setNumTaskManagers(1).setNumSlotsPerTaskManager(slots).build());
        try {
            cluster.start();
        } catch (Exception e) {
            cluster.close();
            throw e;
        }
        return cluster;
    }
}
