package io.xpuflow.connector.records;

import java.io.Serializable;

/**
 * Where an input record came from, written into its error record so that a bad record can be found
 * (and replayed) in the input topic.
 */
public record SourceCoordinates(String topic, int partition, long offset) implements Serializable {}
