package io.xpuflow.connector.kafka;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Injects an {@link EmbeddedKafka} broker into test methods and lifecycle methods. One broker serves
 * every test class of the run (starting one takes seconds); it stops when the run ends. Tests keep
 * apart by using topic names, consumer groups and transactional id prefixes of their own.
 *
 * <pre>{@code
 * @ExtendWith(EmbeddedKafkaExtension.class)
 * class MyTest {
 *     @Test void x(EmbeddedKafka kafka) { kafka.createTopic("x-in", 2); ... }
 * }
 * }</pre>
 */
public final class EmbeddedKafkaExtension implements ParameterResolver {
    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(EmbeddedKafkaExtension.class);

    /** Closes the broker when the root context (the whole run) closes. */
    private record Broker(EmbeddedKafka kafka) implements ExtensionContext.Store.CloseableResource {
        @Override
        public void close() {
            kafka.close();
        }
    }

    /** The run's broker, started on first use. */
    public static EmbeddedKafka kafka(ExtensionContext context) {
        return context.getRoot().getStore(NAMESPACE)
                .getOrComputeIfAbsent(Broker.class, k -> new Broker(EmbeddedKafka.start()), Broker.class).kafka();
    }

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == EmbeddedKafka.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        return kafka(context);
    }
}
