package io.xpuflow.jobs;

import io.xpuflow.connector.kafka.EmbeddedKafka;
import java.util.List;
import java.util.Map;

/** The topics of one job run in the job tests: {@code <run>-in}, {@code <run>-out} and {@code <run>-dlq}. */
final class JobTopics {
    private JobTopics() {}

    /** Creates the three topics (the input with {@code inputPartitions}) and produces {@code records} to the input. */
    static void create(EmbeddedKafka kafka, String run, int inputPartitions, List<Map.Entry<String, String>> records) {
        kafka.createTopic(run + "-in", inputPartitions);
        kafka.createTopic(run + "-out", 1);
        kafka.createTopic(run + "-dlq", 1);
        kafka.produceStrings(run + "-in", records);
    }
}
