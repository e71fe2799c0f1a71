package io.xpuflow.runtime.options;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.engine.EngineOptionDefs;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.sample.SamplingOptionDefs;
import io.xpuflow.runtime.sample.SamplingParams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The README documents the options exactly as they are defined; the definitions are sound. */
class OptionsReadmeTest {

    @Test
    void theReadmeTableIsTheOneGeneratedFromTheDefinitions() throws Exception {
        String readme = Files.readString(Path.of("..", "README.md"));
        int begin = readme.indexOf(OptionsTable.BEGIN);
        int end = readme.indexOf(OptionsTable.END);
        assertThat(begin).as("README.md has the options table markers").isNotNegative();
        assertThat(end).isGreaterThan(begin);
        String table = readme.substring(begin, end + OptionsTable.END.length()) + "\n";
        assertThat(table).as("README.md's options table; replace it with the output of OptionsTable.main")
                .isEqualTo(OptionsTable.markdown());
    }

    @Test
    void namesAreUniqueAndEveryDefaultIsTheBuildersDefault() {
        Set<String> names = new HashSet<>();
        for (Option<?> o : all()) {
            assertThat(names.add(o.name())).as("duplicate option %s", o).isTrue();
            assertThat(o.key()).matches("[a-z0-9]+(-[a-z0-9]+)*");
        }
        // the records' builders start from the definitions' defaults
        SamplingParams p = SamplingParams.builder().build();
        assertThat(p.maxTokens()).isEqualTo(16).isEqualTo(SamplingOptionDefs.MAX_TOKENS.defaultValue());
        assertThat(p).isEqualTo(SamplingOptionDefs.apply(SamplingParams.builder(), java.util.Map.of()).build());
        EngineOptions e = EngineOptions.builder(Path.of("m")).build();
        assertThat(e.kvCacheBytes()).isEqualTo(EngineOptionDefs.KV_CACHE_MEMORY.defaultValue());
        assertThat(e.maxNumSeqs()).isEqualTo(EngineOptionDefs.MAX_NUM_SEQS.defaultValue());
        assertThat(e.blockSize()).isEqualTo(EngineOptionDefs.BLOCK_SIZE.defaultValue());
        assertThat(e.logStatsInterval()).isEqualTo(EngineOptionDefs.LOG_STATS_INTERVAL.defaultValue());
    }

    @Test
    void examplesFollowTheRules() {
        for (Option<?> o : all()) {
            check(o);
        }
    }

    private static <T> void check(Option<T> o) {
        assertThat(o.check(o.validExample())).isEqualTo(o.validExample());
        if (o.type().javaType().isInstance(o.invalidExample())) {
            // a value of the right type must break the rule; other invalid examples are of the wrong type
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> o.check(o.cast(o.invalidExample()), "x"))
                    .hasMessageStartingWith("'x' must be " + o.ruleText());
        }
    }

    private static List<Option<?>> all() {
        List<Option<?>> all = new java.util.ArrayList<>(SamplingOptionDefs.ALL);
        all.addAll(EngineOptionDefs.ALL);
        return all;
    }
}
