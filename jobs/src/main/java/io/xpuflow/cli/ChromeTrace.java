package io.xpuflow.cli;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import io.xpuflow.device.TraceEvent;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeSet;

/**
 * Writes profiler events as Chrome trace JSON (the "Trace Event Format" that Perfetto and
 * chrome://tracing open): the ops of each step nested on one track, each kernel thread's share of
 * every parallel section on a track of its own.
 */
final class ChromeTrace {
    /** Track of the ops; kernel thread i gets track {@code THREAD_TRACK0 + i}. */
    static final int OPS_TRACK = 1;
    static final int THREAD_TRACK0 = 100;

    private ChromeTrace() {}

    static void write(List<TraceEvent> events, Path file) {
        long t0 = events.stream().mapToLong(TraceEvent::startNs).min().orElse(0);
        try (JsonGenerator g = new JsonFactory().createGenerator(file.toFile(), JsonEncoding.UTF8)) {
            g.writeStartObject();
            g.writeStringField("displayTimeUnit", "ms");
            g.writeArrayFieldStart("traceEvents");
            trackName(g, OPS_TRACK, "ops");
            TreeSet<Integer> threads = new TreeSet<>();
            events.forEach(e -> threads.add(e.thread()));
            for (int t : threads) {
                if (t >= 0) {
                    trackName(g, THREAD_TRACK0 + t, "kernel thread " + t);
                }
            }
            for (TraceEvent e : events) {
                g.writeStartObject();
                g.writeStringField("name", e.layer() >= 0 ? e.op().label() + " L" + e.layer() : e.op().label());
                g.writeStringField("cat", e.thread() < 0 ? "op" : "section");
                g.writeStringField("ph", "X");
                g.writeNumberField("pid", 1);
                g.writeNumberField("tid", e.thread() < 0 ? OPS_TRACK : THREAD_TRACK0 + e.thread());
                g.writeNumberField("ts", (e.startNs() - t0) / 1e3);
                g.writeNumberField("dur", e.durationNs() / 1e3);
                if (e.thread() < 0) {
                    g.writeObjectFieldStart("args");
                    g.writeNumberField("layer", e.layer());
                    g.writeNumberField("rows", e.rows());
                    g.writeNumberField("bytes", e.bytes());
                    g.writeNumberField("flops", e.flops());
                    g.writeEndObject();
                }
                g.writeEndObject();
            }
            g.writeEndArray();
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the trace to " + file, e);
        }
    }

    private static void trackName(JsonGenerator g, int tid, String name) throws IOException {
        g.writeStartObject();
        g.writeStringField("name", "thread_name");
        g.writeStringField("ph", "M");
        g.writeNumberField("pid", 1);
        g.writeNumberField("tid", tid);
        g.writeObjectFieldStart("args");
        g.writeStringField("name", name);
        g.writeEndObject();
        g.writeEndObject();
    }
}
