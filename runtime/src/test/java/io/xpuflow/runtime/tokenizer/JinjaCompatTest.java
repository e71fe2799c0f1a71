package io.xpuflow.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The Jinja2/Python features chat templates use, as Jinjava renders them with {@link JinjaCompat}. */
class JinjaCompatTest {
    private static final List<ChatMessage> CHAT = List.of(ChatMessage.system("S"), ChatMessage.user("U1"),
            ChatMessage.assistant("A1"), ChatMessage.user("U2"));

    private static String render(String template, Map<String, Object> extra) {
        return ChatTemplate.of(template, "<s>", "</s>").render(CHAT, true, extra);
    }

    private static String render(String template) {
        return render(template, Map.of());
    }

    @Test
    void pythonSlices() {
        assertThat(render("{% for m in messages[::-1] %}{{ m.role[0] }}{% endfor %}")).isEqualTo("uaus");
        assertThat(render("{% for m in messages[1:] %}{{ m.content }},{% endfor %}")).isEqualTo("U1,A1,U2,");
        assertThat(render("{% for m in messages[:-1] %}{{ m.content }},{% endfor %}")).isEqualTo("S,U1,A1,");
        assertThat(render("{% for m in messages[::2] %}{{ m.content }},{% endfor %}")).isEqualTo("S,A1,");
        assertThat(render("{% for m in messages[-2:0:-1] %}{{ m.content }},{% endfor %}")).isEqualTo("A1,U1,");
        assertThat(render("{{ 'héllo'[::-1] }}|{{ 'hello'[1:3] }}|{{ 'hello'[-3:] }}|{{ messages[1:2][0].content }}"))
                .isEqualTo("olléh|el|llo|U1");
        assertThat(render("{{ (messages|map(attribute='role')|list)[1:][0] }}")).isEqualTo("user");
        // a list literal with a dict is not a slice
        assertThat(render("{{ [{'a': 1}][0].a }}")).isEqualTo("1");
    }

    @Test
    void namespaceWithExpressionArguments() {
        assertThat(render("{% set ns = namespace(last=messages|length - 1, found=false) %}"
                + "{% for m in messages %}{% if m.role == 'user' %}{% set ns.last = loop.index0 %}{% endif %}"
                + "{% endfor %}{{ ns.last }} of {{ messages|length - 1 }}")).isEqualTo("3 of 3");
    }

    @Test
    void loopVariablesAndTests() {
        assertThat(render("{% for m in messages %}{{ loop.index0 }}{{ 'F' if loop.first }}{{ 'L' if loop.last }}"
                + "{% endfor %}")).isEqualTo("0F123L");
        assertThat(render("{{ messages[0].content is string }} {{ messages is string }} {{ x is defined }} "
                + "{{ messages[0].reasoning is defined }} {{ flag is false }} {{ tools is none }}",
                Map.of("flag", false))).isEqualTo("true false false false true true");
        assertThat(render("{{ messages[-1].content }} {{ 'x' in 'axb' }} {{ 'y' not in 'axb' }}")).isEqualTo("U2 true true");
    }

    @Test
    void notBindsLooserThanTestsAndComparisons() {
        // Jinja2: not (x is defined); Jinjava alone would compute (not x) is defined
        assertThat(render("{{ not bos_token is defined }} {{ not 'y' in 'axb' }} {{ not messages[0].role == 'user' }}"))
                .isEqualTo("false true true");
        assertThat(render("{% if not x is defined and not (messages|length > 9) -%} yes {%- endif %}")).isEqualTo("yes");
        assertThat(render("{{ 'a' if not flag else 'b' }}{{ [not flag, 1]|length }}{{ x is not defined }}",
                Map.of("flag", true))).isEqualTo("b2true");
        assertThat(JinjaCompat.preprocess("{%- if not x is defined -%}{{ f(not a, b) }}{{ not not c }}"))
                .isEqualTo("{%- if not (x is defined) -%}{{ f(not (a), b) }}{{ not (not (c)) }}");
    }

    @Test
    void pythonStringMethods() {
        assertThat(render("{{ '<a>x</a>'.startswith('<a>') and '<a>x</a>'.endswith(('</b>', '</a>')) }}"))
                .isEqualTo("true");
        assertThat(render("{{ 'a</think>'.split('</think>')[-1] == '' }}|{{ 'a|b|c'.split('|', 1)|length }}"))
                .isEqualTo("true|2");
        assertThat(render("[{{ '\\n\\nx\\n'.strip('\\n') }}][{{ '\\nx\\n'.lstrip('\\n') }}][{{ '\\nx\\n'.rstrip('\\n') }}]"
                + "[{{ '  y  '.strip() }}][{{ ' a  b '.split()|join(',') }}]"))
                .isEqualTo("[x][x\n][\nx][y][a,b]");
        assertThat(render("{{ 'Hello'.upper() }} {{ 'Hello'.lower() }} {{ 'hello world'.title() }} "
                + "{{ 'aaa'.replace('a', 'b', 2) }} {{ 'a,b'.rsplit(',', 1)[0] }} {{ ', '.join(['x', 'y']) }}"))
                .isEqualTo("HELLO hello Hello World bba a x, y");
        assertThat(render("{{ '{} + {}'.format(1, 2) }} {{ 'abcabc'.count('bc') }} {{ 'abc'.find('c') }}"))
                .isEqualTo("1 + 2 2 2");
    }

    @Test
    void pythonJson() {
        Map<String, Object> tool = new LinkedHashMap<>();
        tool.put("name", "f");
        tool.put("args", List.of(1, 2.5, true, "q\"\n"));
        tool.put("none", null);
        assertThat(render("{{ tool|tojson }}", Map.of("tool", tool)))
                .isEqualTo("{\"name\": \"f\", \"args\": [1, 2.5, true, \"q\\\"\\n\"], \"none\": null}");
        assertThat(render("{{ tool|tojson(indent=2) }}", Map.of("tool", Map.of("a", List.of(1)))))
                .isEqualTo("{\n  \"a\": [\n    1\n  ]\n}");
        assertThat(render("{{ '中文'|tojson }}")).isEqualTo("\"中文\"");
        assertThat(PyJson.pythonFloat(1e20)).isEqualTo("1e+20");
        assertThat(PyJson.pythonFloat(1.5e-7)).isEqualTo("1.5e-07");
        assertThat(PyJson.pythonFloat(12345678.0)).isEqualTo("12345678.0");
        assertThat(PyJson.pythonFloat(0.0001)).isEqualTo("0.0001");
    }

    @Test
    void whitespaceControlLikeTransformers() {
        // trim_blocks drops the newline after a tag, lstrip_blocks the indentation before it
        assertThat(render("{% for m in messages[:2] %}\n    {% if true %}\n{{ m.content }}\n    {% endif %}\n{% endfor %}"))
                .isEqualTo("S\nU1\n");
        assertThat(render("a  {{- 'b' -}}  c")).isEqualTo("abc");
        assertThat(render("{{ bos_token }}x{{ eos_token }}")).isEqualTo("<s>x</s>");
    }

    @Test
    void dictsAndOperators() {
        assertThat(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.get('b', 'none') }}",
                Map.of("d", new LinkedHashMap<>(Map.of("a", 1))))).isEqualTo("a=1;none");
        assertThat(render("{{ 'x' + messages[0].content|lower }}|{{ 7 // 2 }}|{{ 'a' ~ 1 }}")).isEqualTo("xs|3|a1");
    }

    @Test
    void rawBlocksAndStringsAreNotRewritten() {
        assertThat(JinjaCompat.preprocess("{% raw %}{{ x[::-1] }}{% endraw %} '[::-1]' {{ '[1:]' }}"))
                .isEqualTo("{% raw %}{{ x[::-1] }}{% endraw %} '[::-1]' {{ '[1:]' }}");
        assertThat(JinjaCompat.preprocess("{{ f(a=b - 1, c = d) }}{{ a == b }}{% set x = y[1:] %}"))
                .isEqualTo("{{ f(a=(b - 1), c = (d)) }}{{ a == b }}{% set x = y[__xpuflow_slice(1, none, none)] %}");
        assertThat(render("{% raw %}{{ x }}{% endraw %}")).isEqualTo("{{ x }}");
    }

    @Test
    void strftimeNowAndErrors() {
        assertThat(render("{{ strftime_now('%Y') }}")).matches("\\d{4}");
        assertThatThrownBy(() -> render("{{ 'a'.split('') }}")).isInstanceOf(ChatTemplateException.class)
                .hasMessageContaining("empty separator");
    }
}
