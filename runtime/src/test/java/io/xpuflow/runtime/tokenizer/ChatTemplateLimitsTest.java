package io.xpuflow.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Chat templates from checkpoints a user may not trust: they cannot read resources or files, and every render
 * is bounded in time, string size and memory, ending in a {@link ChatTemplateException} that names the limit.
 * Each attack here ran for minutes, ran out of heap or printed a class-path resource before the limits.
 */
class ChatTemplateLimitsTest {
    private static final List<ChatMessage> CHAT = List.of(ChatMessage.user("hi"));

    @ParameterizedTest
    @ValueSource(strings = {
        "{% include 'META-INF/MANIFEST.MF' %}",
        "{% include 'io/xpuflow/runtime/tokenizer/ChatTemplate.class' %}",
        "{% import 'META-INF/MANIFEST.MF' as m %}{{ m }}",
        "{% from 'META-INF/MANIFEST.MF' import x %}{{ x }}",
        "{% extends 'META-INF/MANIFEST.MF' %}",
        "{% include '/etc/passwd' %}",
        "{% if messages %}{% include 'META-INF/MANIFEST.MF' %}{% endif %}",
    })
    void templatesCannotReadResourcesOrFiles(String template) {
        assertThatThrownBy(() -> ChatTemplate.of(template, null, null).render(CHAT, true, null))
                .isInstanceOf(ChatTemplateException.class)
                .hasMessageContaining("cannot read files or other templates")
                .satisfies(e -> assertThat(((ChatTemplateException) e).isMissing()).isFalse())
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("Manifest-Version", "root:"));
    }

    @Test
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // fails, not hangs, without the limits
    void aBillionIterationsAreStopped() {
        String template = "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
                + "{{ '' }}{% endfor %}{% endfor %}{% endfor %}";
        long start = System.nanoTime();
        // Jinjava allocates a few hundred bytes per node: whichever of time and memory runs out first stops it
        refused(template).hasMessageMatching(".*over the (time limit of 2000 ms|memory limit of \\d+ MiB) for a chat template");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
    }

    @Test
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // fails, not hangs, without the limits
    void slowLoopsStopAtTheTimeLimit() {
        // a million scans of a 2 Mi-character string: slow, and allocating little
        String template = "{% set ns = namespace(s='ab') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}"
                + "{% endfor %}{% for i in range(1000) %}{% for j in range(1000) %}{{ ns.s.count('b') > 0 }}"
                + "{% endfor %}{% endfor %}";
        long start = System.nanoTime();
        refused(template).hasMessageContaining("over the time limit of 2000 ms for a chat template");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
    }

    @Test
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // fails, not hangs, without the limits
    void aLoopOnlyOverTheMessagesIsBoundedToo() {
        // the load-time check sees no messages; the loop only runs when rendering
        String template = "{% for m in messages %}{% for i in range(1000) %}{% for j in range(1000) %}"
                + "{% for k in range(1000) %}{{ '' }}{% endfor %}{% endfor %}{% endfor %}{% endfor %}";
        ChatTemplate t = ChatTemplate.of(template, null, null);
        // as above: an empty loop allocates as it goes, so time or memory stops it, whichever runs out first
        assertThatThrownBy(() -> t.render(CHAT, true, null)).isInstanceOf(ChatTemplateException.class)
                .hasMessageMatching(".*over the (time limit of 2000 ms|memory limit of \\d+ MiB) for a chat template");
    }

    @ParameterizedTest
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // fails, not hangs, without the limits
    @ValueSource(strings = {
        "{% set s = 'ab' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s|length }}",
        "{% set s = 'ab' %}{% for i in range(40) %}{% set s = s + s %}{% endfor %}{{ s|length }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        "{% set s = 'ab' %}{% for i in range(40) %}{% set s = s.replace('a', 'aa').replace('b', 'bb') %}{% endfor %}{{ s|length }}",
        "{% set s = 'ab' %}{% for i in range(40) %}{% set s = s|replace('a', 'aaaa') %}{% endfor %}{{ s|length }}",
        "{% set s = 'ab' %}{% for i in range(40) %}{% set s = [s, s]|join %}{% endfor %}{{ s|length }}",
        "{% set s = 'ab' %}{% for i in range(40) %}{% set s = ''.join([s, s]) %}{% endfor %}{{ s|length }}",
        "{% set s = 'ab' %}{% for i in range(40) %}{% set s = '{}{}'.format(s, s) %}{% endfor %}{{ s|length }}",
        "{{ 'x'|center(2000000000) }}",
        "{{ 'x\ny\nz'|indent(1000000000) }}",
        "{{ '%999999999d'|format(1) }}",
        "{{ [[[[1]]]]|tojson(indent=1000000000) }}",
        "{{ [1, 2]|batch(2000000000, 'x')|list|length }}",
    })
    void stringsThatGrowWithoutBoundStopAtTheSizeLimit(String template) {
        refused(template).hasMessageContaining("limit of 8388608 characters for a chat template");
    }

    @Test
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // fails, not hangs, without the limits
    void allocatingStopsAtTheMemoryLimit() {
        // 4 Mi characters, then a thousand fresh copies of twice that: each string is under the size limit
        String template = "{% set ns = namespace(s='ab') %}{% for i in range(21) %}{% set ns.s = ns.s ~ ns.s %}"
                + "{% endfor %}{% for i in range(1000) %}{% set t = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}";
        refused(template).hasMessageContaining("over the memory limit of")
                .hasMessageContaining("MiB for a chat template");
    }

    @Test
    void rangeIsNotCutShortAtJinjavasDefault() {
        assertThat(ChatTemplate.of("{{ range(5000)|length }}", null, null).render(CHAT, false, null)).isEqualTo("5000");
    }

    @Test
    void disabledFiltersSayWhy() {
        refused("{{ '{{ 1 }}'|render }}").hasMessageContaining("render");
        refused("{{ 'a: 1'|fromyaml }}").hasMessageContaining("fromyaml");
        refused("{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'|regex_replace('(a+)+$', '') }}")
                .hasMessageContaining("regex_replace");
    }

    @Test
    void aLargeRealConversationRendersWithinTheLimits() {
        // 300 turns of 8000 characters: 2.4 M characters of prompt through the real Qwen3 template
        ChatTemplate qwen = ChatTemplate.load(GoldenCases.qwen3());
        List<ChatMessage> chat = new ArrayList<>();
        StringBuilder expected = new StringBuilder();
        for (int i = 0; i < 300; i++) {
            String text = Integer.toString(i).repeat(8000 / Integer.toString(i).length());
            boolean user = i % 2 == 0;
            chat.add(user ? ChatMessage.user(text) : ChatMessage.assistant(text));
            expected.append("<|im_start|>").append(user ? "user" : "assistant").append('\n')
                    .append(text).append("<|im_end|>\n");
        }
        String prompt = qwen.render(chat, false, Map.of());
        // the last assistant turn gets Qwen3's empty think block; the others are as sent
        assertThat(prompt).hasSizeGreaterThan(2_400_000).startsWith(expected.substring(0, 100_000));
    }

    @Test
    void theBudgetIsPerRender() {
        ChatTemplate t = ChatTemplate.of("{% for m in messages %}{{ m.content }}{% endfor %}", null, null);
        for (int i = 0; i < 3; i++) {
            assertThat(t.render(CHAT, false, null)).isEqualTo("hi");
        }
        // a refused render leaves nothing behind on this thread
        refused("{{ 'x'|center(2000000000) }}");
        assertThat(t.render(CHAT, false, null)).isEqualTo("hi");
    }

    private static AbstractThrowableAssert<?, ? extends Throwable> refused(String template) {
        return assertThatThrownBy(() -> ChatTemplate.of(template, null, null).render(CHAT, true, null))
                .isInstanceOf(ChatTemplateException.class);
    }
}
