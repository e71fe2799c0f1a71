package io.xpuflow.cli;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Run in a JVM of its own by {@link CliLoggingTest}: sets logging up as the CLI does, then logs at each level. */
public final class CliLoggingProbe {
    private CliLoggingProbe() {}

    public static void main(String[] args) {
        CliLogging.configure(args);
        Logger ours = LoggerFactory.getLogger("io.xpuflow.runtime.engine.Probe");
        Logger theirs = LoggerFactory.getLogger("org.apache.flink.runtime.Probe");
        ours.debug("ours at debug");
        ours.info("ours at info");
        ours.warn("ours at warn");
        theirs.info("theirs at info");
        theirs.warn("theirs at warn");
        theirs.error("theirs at error");
    }
}
