package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.connector.options.OptionReaders;
import io.xpuflow.connector.records.RequestParser;
import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.connector.sql.SamplingJson;
import io.xpuflow.connector.sql.XpuFlowModelProvider;
import io.xpuflow.jobs.KafkaInferenceJob;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.InvalidInputException;
import io.xpuflow.runtime.engine.EngineOptionDefs;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.options.Option;
import io.xpuflow.runtime.options.Surface;
import io.xpuflow.runtime.sample.SamplingOptionDefs;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.spec.SpeculativeConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.catalog.CatalogModel;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ObjectIdentifier;
import org.apache.flink.table.catalog.ResolvedCatalogModel;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.ModelProviderFactory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;

/**
 * Every sampling and engine option, through every surface, with the real parsers: the JSON request reader
 * (Kafka records), {@code LLM_GENERATE}'s options JSON, the SQL model options (Flink's model provider
 * factory), the Kafka job's flags and the {@code xpuflow generate} flags. For each option defined in
 * {@link SamplingOptionDefs} and {@link EngineOptionDefs} (a new option is covered without touching this
 * test): its valid example gives the same parsed settings on every surface that takes it; its invalid
 * example is refused by each with a message naming the option as that surface spells it (and stating the
 * rule, when the value has the right type); a misspelt name is refused with the right name suggested; a
 * surface that does not take the option refuses it as unknown.
 */
class OptionSurfacesTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String MODEL = "/models/m";
    private static final String[] JOB_ARGS = {"--bootstrap-servers", "localhost:9092", "--input-topic", "in",
            "--output-topic", "out", "--model", MODEL};
    private static final String[] GENERATE_ARGS = {"generate", "-m", MODEL, "-p", "x"};

    static Stream<Option<?>> sampling() {
        return SamplingOptionDefs.ALL.stream();
    }

    static Stream<Option<?>> engine() {
        return EngineOptionDefs.ALL.stream();
    }

    // ------------------------------------------------------------------------------------------ sampling

    @ParameterizedTest(name = "{0}")
    @MethodSource("sampling")
    void aValidSamplingValueMeansTheSameOnEverySurface(Option<?> o) throws Exception {
        Object v = o.validExample();
        SamplingParams expected = SamplingOptionDefs.apply(SamplingParams.builder(), Map.of(o, v)).build();
        assertThat(expected).as("the example differs from the default").isNotEqualTo(SamplingParams.builder().build());

        if (o.on(Surface.REQUEST_JSON)) {
            assertThat(RequestParser.withDefaults().parse(request(o.jsonName(), v)).sampling()).isEqualTo(expected);
        }
        if (o.on(Surface.OPTIONS_JSON)) {
            assertThat(SamplingJson.parse(json(o.jsonName(), v), SamplingDefaults.ENGINE)).isEqualTo(expected);
        }
        if (o.on(Surface.SQL)) {
            assertThat(model(o.key(), sqlText(v)).sampling()).isEqualTo(SamplingDefaults.of(expected));
        }
        if (o.on(Surface.JOB_FLAG)) {
            assertThat(job(flag(o, v)).samplingDefaults()).isEqualTo(SamplingDefaults.of(expected));
        }
        if (o.on(Surface.CLI)) {
            GenerateCommand g = generate(flag(o, v));
            assertThat(SamplingOptionDefs.apply(SamplingParams.builder(), g.sampling.values()).build()).isEqualTo(expected);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("sampling")
    void anInvalidSamplingValueIsRefusedByEverySurfaceNamingTheOption(Option<?> o) {
        Object bad = o.invalidExample();
        String rule = o.type().javaType().isInstance(bad) ? o.ruleText() : "";
        if (o.on(Surface.REQUEST_JSON)) {
            InvalidInputException e = (InvalidInputException) catchThrowable(
                    () -> RequestParser.withDefaults().parse(request(o.jsonName(), bad)));
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_PARAM);
            assertThat(e.getMessage()).contains("'" + o.jsonName()).contains(rule);
        }
        if (o.on(Surface.OPTIONS_JSON)) {
            InvalidInputException e = (InvalidInputException) catchThrowable(
                    () -> SamplingJson.parse(json(o.jsonName(), bad), SamplingDefaults.ENGINE));
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_PARAM);
            assertThat(e.getMessage()).contains("'" + o.jsonName()).contains(rule);
        }
        if (o.on(Surface.SQL)) {
            assertSqlRefuses(o.key(), sqlText(bad), "Invalid value for option '" + o.key() + "'", rule);
        }
        assertFlagsRefuse(o, bad, rule);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("sampling")
    void aMisspeltOrUnavailableSamplingOptionIsUnknownEverywhere(Option<?> o) {
        String typo = o.jsonName() + "x";
        String expectedJson = "unknown field '" + typo + "'; did you mean '" + o.jsonName() + "'?";
        assertThat(catchThrowable(() -> RequestParser.withDefaults().parse(request(typo, o.validExample()))))
                .hasMessage(o.on(Surface.REQUEST_JSON) ? expectedJson : "unknown field '" + typo + "'; did you mean '"
                        + nearest(typo, Surface.REQUEST_JSON) + "'?");
        Throwable e = catchThrowable(() -> SamplingJson.parse(json(typo, o.validExample()), SamplingDefaults.ENGINE));
        if (o.on(Surface.OPTIONS_JSON)) {
            assertThat(e).hasMessage(expectedJson);
        } else {
            assertThat(e).hasMessageStartingWith("unknown field '" + typo + "'");
            assertThat(catchThrowable(() -> SamplingJson.parse(json(o.jsonName(), o.validExample()),
                    SamplingDefaults.ENGINE))).hasMessageStartingWith("unknown field '" + o.jsonName() + "'");
        }
        assertSqlRefuses(o.key() + "x", sqlText(o.validExample()), "unknown option '" + o.key() + "x'");
        if (!o.on(Surface.SQL)) {
            assertSqlRefuses(o.key(), sqlText(o.validExample()), "unknown option '" + o.key() + "'");
        }
        assertUnknownFlag(o);
    }

    // -------------------------------------------------------------------------------------------- engine

    @ParameterizedTest(name = "{0}")
    @MethodSource("engine")
    void aValidEngineValueMeansTheSameOnEverySurface(Option<?> o) {
        // the option's example, with the options it needs to take effect (num_speculative_tokens: a method)
        Map<Option<?>, Object> values = new LinkedHashMap<>(EngineOptionDefs.takesEffectWith(o));
        values.put(o, o.validExample());
        EngineOptions expected = EngineOptionDefs.apply(EngineOptions.builder(Path.of(MODEL)), values).build();
        Map<Option<?>, Object> without = new LinkedHashMap<>(values);
        without.remove(o);
        assertThat(expected).as("the example differs from the default")
                .isNotEqualTo(EngineOptionDefs.apply(EngineOptions.builder(Path.of(MODEL)), without).build());
        List<String> flags = new ArrayList<>();
        Map<String, String> sql = new HashMap<>();
        values.forEach((x, v) -> {
            flags.addAll(flag(x, v));
            sql.put(x.key(), sqlText(v));
        });
        if (o.on(Surface.SQL)) {
            assertThat(model(sql).engine().toOptions()).isEqualTo(expected);
        }
        if (o.on(Surface.JOB_FLAG)) {
            assertThat(job(flags).engineSpec().toOptions()).isEqualTo(expected);
        }
        if (o.on(Surface.CLI)) {
            GenerateCommand g = generate(flags);
            assertThat(g.engineArgs.toOptions(0)).isEqualTo(expected);
        }
        assertThat(o.on(Surface.REQUEST_JSON) || o.on(Surface.OPTIONS_JSON)).as("engine options are per engine").isFalse();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engine")
    void anInvalidEngineValueIsRefusedByEverySurfaceNamingTheOption(Option<?> o) {
        Object bad = o.invalidExample();
        String rule = o.type().javaType().isInstance(bad) ? o.ruleText() : "";
        if (o.on(Surface.SQL)) {
            assertSqlRefuses(o.key(), sqlText(bad), "Invalid value for option '" + o.key() + "'", rule);
        }
        assertFlagsRefuse(o, bad, rule);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engine")
    void aMisspeltOrUnavailableEngineOptionIsUnknownEverywhere(Option<?> o) {
        assertSqlRefuses(o.key() + "x", sqlText(o.validExample()), "unknown option '" + o.key() + "x'");
        if (!o.on(Surface.SQL)) {
            assertSqlRefuses(o.key(), sqlText(o.validExample()), "unknown option '" + o.key() + "'");
        }
        assertUnknownFlag(o);
    }

    @org.junit.jupiter.api.Test
    void speculativeDecodingAsTheIssueSpellsItOnEverySurfaceWithOnAndOff() {
        SpeculativeConfig fixedMtp = SpeculativeConfig.mtp(2).withAdaptive(false);
        List<String> flags = List.of("--speculative-method", "mtp", "--num-speculative-tokens", "2",
                "--speculative-adaptive", "off");
        assertThat(generate(flags).engineArgs.toOptions(0).speculative()).isEqualTo(fixedMtp);
        assertThat(job(flags).engineSpec().toOptions().speculative()).isEqualTo(fixedMtp);
        assertThat(model(Map.of("speculative-method", "MTP", "num-speculative-tokens", "2", "speculative-adaptive",
                "OFF")).engine().speculative()).isEqualTo(fixedMtp);
        CommandLine cli = OptionFlags.install(new CommandLine(new XpuFlowCli()));
        cli.parseArgs("bench", "throughput", "-m", MODEL, "--speculative-method", "ngram", "--num-speculative-tokens",
                "3", "--speculative-adaptive", "on");
        BenchCommand.Throughput bench = cli.getSubcommands().get("bench").getSubcommands().get("throughput").getCommand();
        assertThat(bench.engineArgs.toOptions(0).speculative()).isEqualTo(SpeculativeConfig.ngram(3));
        // on and off are text booleans everywhere, as true and false are (and a bare flag is true)
        assertThat(generate(List.of("--ignore-eos", "on")).sampling.values()).containsEntry(SamplingOptionDefs.IGNORE_EOS, true);
        assertThat(job(List.of("--speculative-method", "ngram", "--speculative-adaptive", "OFF")).engineSpec()
                .speculativeAdaptive()).isFalse();
        assertThat(generate(List.of("--speculative-method", "ngram", "--speculative-adaptive")).engineArgs.toOptions(0)
                .speculative().adaptive()).isTrue();
        // a method-less k is ignored; a k out of range is refused even so (the option's own rule)
        assertThat(job(List.of("--num-speculative-tokens", "3")).engineSpec().speculative()).isEqualTo(SpeculativeConfig.NONE);
        assertThatThrownBy(() -> generate(List.of("--num-speculative-tokens", "0")))
                .hasMessageContaining("'--num-speculative-tokens' must be in [1, 4], was 0");
    }

    // ------------------------------------------------------------------------------------------- helpers

    private static void assertFlagsRefuse(Option<?> o, Object bad, String rule) {
        if (o.on(Surface.JOB_FLAG)) {
            assertThatThrownBy(() -> job(flag(o, bad))).isInstanceOf(CommandLine.ParameterException.class)
                    .hasMessageContaining("Invalid value for option '" + o.flag() + "'").hasMessageContaining(rule);
        }
        if (o.on(Surface.CLI) && !o.name().equals("threads")) {
            assertThatThrownBy(() -> generate(flag(o, bad))).isInstanceOf(CommandLine.ParameterException.class)
                    .hasMessageContaining("Invalid value for option '" + o.flag() + "'").hasMessageContaining(rule);
        }
    }

    /** Both command lines refuse a misspelt flag suggesting the right one, and a flag they do not take. */
    private static void assertUnknownFlag(Option<?> o) {
        List<String> typo = List.of(o.flag() + "x", "1");
        for (boolean isJob : new boolean[] {true, false}) {
            Throwable e = catchThrowable(() -> {
                if (isJob) {
                    job(typo);
                } else {
                    generate(typo);
                }
            });
            assertThat(e).isInstanceOf(CommandLine.UnmatchedArgumentException.class)
                    .hasMessageContaining("'" + o.flag() + "x'");
            Surface s = isJob ? Surface.JOB_FLAG : Surface.CLI;
            if (o.on(s)) {
                assertThat(((CommandLine.UnmatchedArgumentException) e).getSuggestions()).contains(o.flag());
            } else if (!(o.name().equals("threads") && s == Surface.CLI)) { // the CLI's --threads is global
                assertThat(catchThrowable(() -> {
                    if (isJob) {
                        job(flag(o, o.validExample()));
                    } else {
                        generate(flag(o, o.validExample()));
                    }
                })).isInstanceOf(CommandLine.UnmatchedArgumentException.class);
            }
        }
    }

    private static String nearest(String typo, Surface surface) {
        List<String> known = new ArrayList<>();
        SamplingOptionDefs.ALL.stream().filter(x -> x.on(surface)).forEach(x -> known.add(x.jsonName()));
        String message = OptionReaders.unknown("field", typo, known);
        return message.substring(message.indexOf("did you mean '") + 14, message.length() - 2);
    }

    private static byte[] request(String field, Object value) throws Exception {
        ObjectNode o = JSON.createObjectNode().put("id", "a").put("prompt", "x");
        o.set(field, JSON.valueToTree(jsonValue(value)));
        return JSON.writeValueAsBytes(o);
    }

    private static String json(String field, Object value) {
        ObjectNode o = JSON.createObjectNode();
        o.set(field, JSON.valueToTree(jsonValue(value)));
        return new String(toBytes(o), StandardCharsets.UTF_8);
    }

    private static byte[] toBytes(ObjectNode o) {
        try {
            return JSON.writeValueAsBytes(o);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Durations and memory sizes are written as text in JSON too. */
    private static Object jsonValue(Object v) {
        return v instanceof Duration ? OptionReaders.toText(v) : v;
    }

    /** A value as a SQL option writes it: lists {@code ;}-separated (strings quoted), sizes as bytes with a unit. */
    private static String sqlText(Object v) {
        if (v instanceof List<?> l) {
            return String.join(";", l.stream().map(e -> e instanceof String s ? "\"" + s + "\"" : String.valueOf(e)).toList());
        }
        if (v instanceof Long bytes && bytes >= 1 << 20) {
            return (bytes >> 20) + "mb";
        }
        return OptionReaders.toText(v);
    }

    /** A value as flags: a list repeats the flag; a memory size is written with a unit. */
    private static List<String> flag(Option<?> o, Object v) {
        List<String> args = new ArrayList<>();
        if (v instanceof List<?> l) {
            for (Object e : l) {
                args.add(o.flag());
                args.add(String.valueOf(e));
            }
        } else {
            args.add(o.flag());
            args.add(sqlText(v));
        }
        return args;
    }

    private static KafkaInferenceJob job(List<String> extra) {
        KafkaInferenceJob job = new KafkaInferenceJob();
        List<String> args = new ArrayList<>(List.of(JOB_ARGS));
        args.addAll(extra);
        KafkaInferenceJob.commandLine(job).parseArgs(args.toArray(String[]::new));
        return job;
    }

    private static GenerateCommand generate(List<String> extra) {
        CommandLine cli = OptionFlags.install(new CommandLine(new XpuFlowCli()));
        List<String> args = new ArrayList<>(List.of(GENERATE_ARGS));
        args.addAll(extra);
        cli.parseArgs(args.toArray(String[]::new));
        return cli.getSubcommands().get("generate").getCommand();
    }

    private static XpuFlowModelProvider model(String key, String value) {
        return model(Map.of(key, value));
    }

    private static XpuFlowModelProvider model(Map<String, String> keyValues) {
        Map<String, String> options = new HashMap<>(Map.of("provider", "xpuflow", "model-path", MODEL));
        options.putAll(keyValues);
        ResolvedSchema in = ResolvedSchema.of(Column.physical("prompt", DataTypes.STRING()));
        ResolvedSchema out = ResolvedSchema.of(Column.physical("completion", DataTypes.STRING()));
        CatalogModel model = CatalogModel.of(Schema.newBuilder().fromResolvedSchema(in).build(),
                Schema.newBuilder().fromResolvedSchema(out).build(), options, null);
        ClassLoader cl = OptionSurfacesTest.class.getClassLoader();
        ModelProviderFactory factory = FactoryUtil.discoverFactory(cl, ModelProviderFactory.class, "xpuflow");
        return (XpuFlowModelProvider) FactoryUtil.createModelProvider(factory, ObjectIdentifier.of("c", "d", "m"),
                ResolvedCatalogModel.of(model, in, out), new Configuration(), cl, true);
    }

    private static void assertSqlRefuses(String key, String value, String... parts) {
        Throwable e = catchThrowable(() -> model(key, value));
        assertThat(e).as("SQL option %s = %s", key, value).isNotNull();
        StringBuilder messages = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            messages.append(t.getMessage()).append('\n');
        }
        assertThat(messages.toString()).contains(parts);
    }
}
