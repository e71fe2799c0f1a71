package io.xpuflow.cli;

import io.xpuflow.connector.kafka.EmbeddedKafka;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The embedded Kafka broker of the commands that run a local pipeline ({@code demo}, {@code bench pipeline}). */
final class EmbeddedBroker {
    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedBroker.class);

    private EmbeddedBroker() {}

    /**
     * Starts the broker. Kafka's storage formatter prints two lines about the metadata directory to
     * {@code System.out} and the test kit offers no way to redirect them, so unless {@code kafkaToConsole}
     * ({@code --verbose=all}) they are held back (and logged at INFO) instead of landing between a command's
     * own output lines.
     */
    static EmbeddedKafka start(boolean kafkaToConsole) {
        if (kafkaToConsole) {
            return EmbeddedKafka.start();
        }
        PrintStream console = System.out;
        ByteArrayOutputStream held = new ByteArrayOutputStream();
        System.setOut(new PrintStream(held, true, StandardCharsets.UTF_8));
        try {
            return EmbeddedKafka.start();
        } finally {
            System.setOut(console);
            LOG.info("Kafka storage formatter: {}", held.toString(StandardCharsets.UTF_8).strip());
        }
    }
}
