package io.xpuflow.cli;

import io.xpuflow.connector.options.OptionReaders;
import io.xpuflow.runtime.options.Option;
import io.xpuflow.runtime.options.OptionType;
import io.xpuflow.runtime.options.Surface;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Command-line flags generated from option definitions ({@link io.xpuflow.runtime.sample.SamplingOptionDefs},
 * {@link io.xpuflow.runtime.engine.EngineOptionDefs}): one flag per definition that takes the surface
 * ({@link Option#flag()}, {@code --max-tokens}), with the definition's description and default, read by
 * {@link OptionReaders#fromText} like a SQL option, so a bad value is a usage error naming the flag
 * ({@code Invalid value for option '--max-tokens': '--max-tokens' must be >= 1, was 0}). List options are
 * repeated flags ({@code --stop A --stop B}); a boolean flag alone means true ({@code --ignore-eos}), and takes
 * {@code true} or {@code false} ({@code --enable-prefix-caching false}).
 *
 * <p>A command (or a mixin of it) that holds flags implements {@link Host}; {@link #install} adds the flags of
 * every host in a command tree, once the {@link CommandLine} is built.
 */
public final class OptionFlags {
    /** A command or mixin with generated flags. */
    public interface Host {
        OptionFlags optionFlags();
    }

    private final List<Option<?>> options = new ArrayList<>();
    private final Map<Option<?>, String[]> aliases = new LinkedHashMap<>();
    /** option → the value given on the command line (not the default) */
    private final Map<Option<?>, Object> values = new LinkedHashMap<>();

    /** The flags of the definitions in {@code definitions} that {@code surface} takes. */
    @SafeVarargs
    public OptionFlags(Surface surface, List<Option<?>>... definitions) {
        for (List<Option<?>> list : definitions) {
            for (Option<?> o : list) {
                if (o.on(surface)) {
                    options.add(o);
                }
            }
        }
    }

    /** Extra names of a flag on this command ({@code -n} for {@code --max-tokens} on {@code generate}). */
    public OptionFlags alias(Option<?> option, String... names) {
        aliases.put(option, names);
        return this;
    }

    public List<Option<?>> options() {
        return Collections.unmodifiableList(options);
    }

    /** The values given on the command line, by option; options left out are absent (their default applies). */
    public Map<Option<?>, Object> values() {
        return Collections.unmodifiableMap(values);
    }

    /** The values given on the command line of the options in {@code definitions} (e.g. the sampling ones). */
    public Map<Option<?>, Object> values(List<Option<?>> definitions) {
        Map<Option<?>, Object> out = new LinkedHashMap<>();
        values.forEach((o, v) -> {
            if (definitions.contains(o)) {
                out.put(o, v);
            }
        });
        return out;
    }

    /** The value given on the command line, else the definition's default. */
    public <T> T get(Option<T> option) {
        return values.containsKey(option) ? option.cast(values.get(option)) : option.defaultValue();
    }

    /** Adds the flags of every {@link Host} in {@code commandLine}'s tree (commands and their mixins). */
    public static CommandLine install(CommandLine commandLine) {
        CommandSpec spec = commandLine.getCommandSpec();
        List<Object> hosts = new ArrayList<>();
        hosts.add(spec.userObject());
        spec.mixins().values().forEach(m -> hosts.add(m.userObject()));
        for (Object h : hosts) {
            if (h instanceof Host host) {
                host.optionFlags().addTo(spec);
            }
        }
        commandLine.getSubcommands().values().forEach(OptionFlags::install);
        return commandLine;
    }

    void addTo(CommandSpec spec) {
        for (Option<?> option : options) {
            if (spec.findOption(option.flag()) != null) {
                continue; // installed already (a CommandLine built twice over the same objects)
            }
            List<String> names = new ArrayList<>(List.of(aliases.getOrDefault(option, new String[0])));
            names.add(option.flag());
            String defaultText = option.defaultText().isEmpty() ? "unset" : option.defaultText();
            OptionSpec.Builder b = OptionSpec.builder(names.toArray(String[]::new))
                    .paramLabel(label(option))
                    .description(option.description() + " (default: " + defaultText + ")")
                    .converters(text -> convert(option, text))
                    .setter(new CommandLine.Model.ISetter() {
                        @Override
                        @SuppressWarnings("unchecked")
                        public <T> T set(T value) {
                            if (value == null || (value instanceof List<?> l && l.isEmpty())) {
                                values.remove(option); // picocli resets an option before it parses
                            } else {
                                // a list option gets the whole list, grown by picocli one occurrence at a time
                                values.put(option, option.type().isList() ? List.copyOf((List<Object>) value) : value);
                            }
                            return null;
                        }
                    })
                    .getter(new CommandLine.Model.IGetter() {
                        @Override
                        @SuppressWarnings("unchecked")
                        public <T> T get() {
                            Object v = values.get(option);
                            return (T) (option.type().isList() && v != null ? new ArrayList<>((List<?>) v) : v);
                        }
                    });
            if (option.type() == OptionType.BOOLEAN) {
                b.type(Object.class).arity("0..1").fallbackValue("true");
            } else if (option.type().isList()) {
                b.type(List.class).auxiliaryTypes(Object.class).arity("1");
            } else {
                b.type(Object.class).arity("1");
            }
            spec.addOption(b.build());
        }
    }

    /** One occurrence of the flag: a value, or for a list option one element; checked. */
    private static Object convert(Option<?> option, String text) {
        try {
            if (option.type().isList()) {
                return ((List<?>) OptionReaders.fromTextList(option, List.of(text), option.flag())).get(0);
            }
            return OptionReaders.fromText(option, text, option.flag());
        } catch (IllegalArgumentException e) {
            throw new CommandLine.TypeConversionException(e.getMessage());
        }
    }

    private static String label(Option<?> option) {
        return switch (option.type()) {
            case INTEGER, LONG -> "N";
            case NUMBER -> "X";
            case BOOLEAN -> "BOOL";
            case STRINGS -> "TEXT";
            case INTEGERS -> "ID";
            case MEMORY_SIZE -> "SIZE";
            case DURATION -> "DURATION";
            case CHOICE -> option.name().toUpperCase(Locale.ROOT);
        };
    }
}
