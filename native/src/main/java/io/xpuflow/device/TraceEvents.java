package io.xpuflow.device;

import java.util.List;

/**
 * The profiler events read from a model at once.
 *
 * @param events oldest first
 * @param dropped events lost because the recording buffer was full
 */
public record TraceEvents(List<TraceEvent> events, long dropped) {}
