package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Sizes and durations on our command lines read as Flink reads them, plain memory numbers as MiB. */
class FlinkSyntaxTest {
    @Test
    void memorySizesAreFlinksWithPlainNumbersInMib() {
        assertThat(FlinkSyntax.memorySize("512mb").getBytes()).isEqualTo(512L << 20);
        assertThat(FlinkSyntax.memorySize("4gb").getBytes()).isEqualTo(4L << 30);
        assertThat(FlinkSyntax.memorySize("1 g").getBytes()).isEqualTo(1L << 30);
        assertThat(FlinkSyntax.memorySize("64k").getBytes()).isEqualTo(64L << 10);
        assertThat(FlinkSyntax.memorySize(" 512 ").getBytes()).isEqualTo(512L << 20); // compatibility: MiB
        // with a unit, exactly what a SQL 'kv-cache-memory' (a Flink memory option) reads
        Configuration sql = new Configuration();
        sql.setString("kv-cache-memory", "96mb");
        assertThat(FlinkSyntax.memorySize("96mb"))
                .isEqualTo(sql.get(ConfigOptions.key("kv-cache-memory").memoryType().noDefaultValue()));

        for (String bad : new String[] {"lots", "", "-1", "12 parsecs", "1.5gb"}) {
            assertThatThrownBy(() -> FlinkSyntax.memorySize(bad)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("'" + bad + "' is not a memory size such as 512mb, 4gb or 512 (a plain number is MiB)");
        }
        assertThatThrownBy(() -> FlinkSyntax.memorySize("0mb")).hasMessage("'0mb' is not a memory size above zero");
        assertThatThrownBy(() -> FlinkSyntax.memorySize("0")).hasMessage("'0' is not a memory size above zero");
    }

    @Test
    void durationsAreFlinks() {
        assertThat(FlinkSyntax.duration("500ms")).isEqualTo(Duration.ofMillis(500));
        assertThat(FlinkSyntax.duration("10s")).isEqualTo(Duration.ofSeconds(10));
        assertThat(FlinkSyntax.duration("10 s")).isEqualTo(Duration.ofSeconds(10));
        assertThat(FlinkSyntax.duration("5m")).isEqualTo(Duration.ofMinutes(5));
        assertThat(FlinkSyntax.duration("5 min")).isEqualTo(Duration.ofMinutes(5));
        assertThat(FlinkSyntax.duration("1h")).isEqualTo(Duration.ofHours(1));
        assertThat(FlinkSyntax.duration("PT2S")).isEqualTo(Duration.ofSeconds(2));
        assertThat(FlinkSyntax.duration("0")).isEqualTo(Duration.ZERO);
        assertThat(FlinkSyntax.duration("250")).isEqualTo(Duration.ofMillis(250)); // Flink's: plain is ms
        for (String bad : new String[] {"soon", "-1s", "10 parsecs", ""}) {
            assertThatThrownBy(() -> FlinkSyntax.duration(bad)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("'" + bad + "' is not a duration such as 500ms, 10s, 5min, 1h or PT10S"
                            + " (a plain number is milliseconds)");
        }
    }

    @Test
    void theConvertersReportBadValuesAsPicocliUsageErrors() {
        assertThatThrownBy(() -> new FlinkSyntax.MemorySizeConverter().convert("lots"))
                .isInstanceOf(CommandLine.TypeConversionException.class).hasMessageContaining("'lots' is not a memory size");
        assertThatThrownBy(() -> new FlinkSyntax.DurationConverter().convert("soon"))
                .isInstanceOf(CommandLine.TypeConversionException.class).hasMessageContaining("'soon' is not a duration");
        assertThat(new FlinkSyntax.MemorySizeConverter().convert("2gb")).isEqualTo(MemorySize.ofMebiBytes(2048));
    }

    /** The engine commands take the same syntax: {@code xpuflow generate --kv-cache-memory 1gb}. */
    @Test
    void engineArgsTakeTheSameSyntax() {
        EngineArgs args = new EngineArgs();
        OptionFlags.install(new CommandLine(args)).parseArgs("-m", "/m", "--kv-cache-memory", "1gb", "--log-stats-interval", "1 min");
        assertThat(args.toSpec(1).kvCacheBytes()).isEqualTo(1L << 30);
        assertThat(args.logStatsInterval()).isEqualTo(Duration.ofMinutes(1));
        EngineArgs plain = new EngineArgs();
        OptionFlags.install(new CommandLine(plain)).parseArgs("-m", "/m", "--kv-cache-memory", "32");
        assertThat(plain.toSpec(1).kvCacheBytes()).isEqualTo(32L << 20);
        EngineArgs defaults = new EngineArgs();
        OptionFlags.install(new CommandLine(defaults)).parseArgs("-m", "/m");
        assertThat(defaults.toSpec(1).kvCacheBytes()).isEqualTo(512L << 20);
        assertThatThrownBy(() -> OptionFlags.install(new CommandLine(new EngineArgs()))
                .parseArgs("-m", "/m", "--kv-cache-memory", "lots"))
                .isInstanceOf(CommandLine.ParameterException.class)
                .hasMessageContaining("Invalid value for option '--kv-cache-memory'")
                .hasMessageContaining("'--kv-cache-memory' must be a memory size such as 512mb, 4gb or 512 (a plain number is MiB)");
    }

    /** {@code bench pipeline --checkpoint-interval 2s}; the old {@code --checkpoint-interval-ms 200} reads as before. */
    @Test
    void benchPipelineTakesADurationAndItsOldMillisecondOption() {
        BenchPipeline bench = new BenchPipeline();
        new CommandLine(bench).parseArgs("-m", "/m", "--checkpoint-interval", "2s");
        assertThat(bench.checkpointInterval).isEqualTo(Duration.ofSeconds(2));
        BenchPipeline old = new BenchPipeline();
        new CommandLine(old).parseArgs("-m", "/m", "--checkpoint-interval-ms", "200");
        assertThat(old.checkpointInterval).isEqualTo(Duration.ofMillis(200));
    }
}
