package io.xpuflow.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.testutil.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

/** The README's main command end to end: embedded Kafka, a local Flink job, completions printed. */
class DemoCommandTest {
    @Test
    void demoAnswersEveryPromptAndReportsTheBrokenOne() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = XpuFlowCli.execute(new String[] {"demo", "--model", Fixtures.model("stories260k").toString(),
                "--max-tokens", "12", "--threads", "1"}, new PrintWriter(out, true), new PrintWriter(err, true));
        assertThat(code).as(err.toString()).isZero();
        String text = out.toString();
        for (int i = 1; i <= 6; i++) {
            assertThat(text).containsPattern("< story-" + i + " \\[length, 12 tokens, [0-9]+ ms\\]: \\S");
        }
        assertThat(text).contains("! broken: INVALID_JSON").contains("Done: 7 of 7 records answered");
    }
}
