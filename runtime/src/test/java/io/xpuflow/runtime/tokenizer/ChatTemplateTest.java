package io.xpuflow.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real Qwen3 chat template, rendered as {@code transformers}' {@code apply_chat_template} renders it (the
 * expected strings follow the template's logic by hand: ChatML, reasoning kept only after the last user
 * query, consecutive tool results in one user turn).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ChatTemplateTest {
    private ChatTemplate qwen;

    @TempDir
    Path dir;

    @BeforeAll
    void load() {
        qwen = ChatTemplate.load(GoldenCases.qwen3());
    }

    @Test
    void systemAndUserWithGenerationPrompt() {
        String prompt = qwen.render(List.of(ChatMessage.system("You are a helpful assistant."),
                ChatMessage.user("What is MoE?")), true, Map.of());
        assertThat(prompt).isEqualTo("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                + "<|im_start|>user\nWhat is MoE?<|im_end|>\n"
                + "<|im_start|>assistant\n");
    }

    @Test
    void thinkingCanBeSwitchedOff() {
        List<ChatMessage> chat = List.of(ChatMessage.user("Hi"));
        assertThat(qwen.render(chat, true, Map.of("enable_thinking", false)))
                .isEqualTo("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
        assertThat(qwen.render(chat, true, Map.of("enable_thinking", true)))
                .isEqualTo("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        assertThat(qwen.render(chat, false, null)).isEqualTo("<|im_start|>user\nHi<|im_end|>\n");
    }

    @Test
    void multiTurnDropsTheReasoningOfEarlierAnswers() {
        String prompt = qwen.render(List.of(
                ChatMessage.system("Be brief."),
                ChatMessage.user("2+2?"),
                ChatMessage.assistant("<think>\nadd them\n</think>\n\n4"),
                ChatMessage.user("And 3+3?")), true, Map.of());
        assertThat(prompt).isEqualTo("<|im_start|>system\nBe brief.<|im_end|>\n"
                + "<|im_start|>user\n2+2?<|im_end|>\n"
                + "<|im_start|>assistant\n4<|im_end|>\n"
                + "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
                + "<|im_start|>assistant\n");
    }

    @Test
    void theLastAnswerKeepsItsReasoning() {
        String prompt = qwen.render(List.of(
                ChatMessage.user("2+2?"),
                ChatMessage.assistant("<think>\nadd them\n</think>\n\n4")), false, Map.of());
        assertThat(prompt).isEqualTo("<|im_start|>user\n2+2?<|im_end|>\n"
                + "<|im_start|>assistant\n<think>\nadd them\n</think>\n\n4<|im_end|>\n");
        // without reasoning, the last answer gets an empty think block (strip('\n') of '')
        assertThat(qwen.render(List.of(ChatMessage.user("Hi"), ChatMessage.assistant("Hello!")), false, Map.of()))
                .isEqualTo("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>\n");
    }

    @Test
    void consecutiveToolResultsShareOneUserTurn() {
        String prompt = qwen.render(List.of(
                ChatMessage.user("Weather in Paris and Rome?"),
                ChatMessage.assistant("Looking it up."),
                new ChatMessage("tool", "{\"Paris\": 18}"),
                new ChatMessage("tool", "{\"Rome\": 24}")), true, Map.of());
        assertThat(prompt).isEqualTo("<|im_start|>user\nWeather in Paris and Rome?<|im_end|>\n"
                + "<|im_start|>assistant\nLooking it up.<|im_end|>\n"
                + "<|im_start|>user\n<tool_response>\n{\"Paris\": 18}\n</tool_response>\n<tool_response>\n"
                + "{\"Rome\": 24}\n</tool_response><|im_end|>\n"
                + "<|im_start|>assistant\n");
    }

    @Test
    void toolsAreListedAsPythonJson() {
        Map<String, Object> tool = Map.of("type", "function", "function",
                new java.util.LinkedHashMap<>(Map.of("name", "get_weather")));
        String prompt = qwen.render(List.of(ChatMessage.system("S"), ChatMessage.user("U")), true,
                Map.of("tools", List.of(tool)));
        assertThat(prompt).startsWith("<|im_start|>system\nS\n\n# Tools\n\nYou may call one or more functions")
                .contains("<tools>\n{\"")
                .contains("\"function\": {\"name\": \"get_weather\"}")
                .endsWith("</tool_call><|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
    }

    @Test
    void theRenderedPromptTokenizesWithSpecialTokens() {
        Tokenizer t = Tokenizer.load(GoldenCases.qwen3());
        String prompt = qwen.render(List.of(ChatMessage.user("What is MoE?")), true, Map.of());
        int[] ids = t.encode(prompt, true);
        // the golden case of the same text
        assertThat(ids).containsExactly(GoldenCases.qwen3Cases().stream()
                .filter(c -> c.text().equals(prompt)).findFirst().orElseThrow().ids());
    }

    @Test
    void aModelWithoutChatTemplate() {
        assertThatThrownBy(() -> ChatTemplate.load(GoldenCases.stories())).isInstanceOf(ChatTemplateException.class)
                .hasMessageContaining(GoldenCases.stories().toString()).hasMessageContaining("has no chat template")
                .satisfies(e -> assertThat(((ChatTemplateException) e).isMissing()).isTrue());
    }

    @Test
    void raiseExceptionRejectsTheConversation() {
        ChatTemplate t = ChatTemplate.of("{% if messages[0]['role'] != 'user' %}"
                + "{{ raise_exception('Conversation must start with a user message') }}{% endif %}ok", null, null);
        assertThat(t.render(List.of(ChatMessage.user("hi")), false, null)).isEqualTo("ok");
        assertThatThrownBy(() -> t.render(List.of(ChatMessage.assistant("hi")), false, null))
                .isInstanceOf(ChatTemplateException.class)
                .hasMessageContaining("raised: Conversation must start with a user message")
                .satisfies(e -> assertThat(((ChatTemplateException) e).raisedByTemplate()).isTrue());
    }

    @Test
    void aTemplateThatDoesNotParseFailsAtLoad() {
        assertThatThrownBy(() -> ChatTemplate.of("{% for m in messages %}{{ m.content }}", null, null))
                .isInstanceOf(ChatTemplateException.class).hasMessageContaining("line 1");
        assertThatThrownBy(() -> ChatTemplate.of("{{ messages[0].content + }}", null, null))
                .isInstanceOf(ChatTemplateException.class);
    }

    @Test
    void bosAndEosComeFromTheTokenizerConfig() throws IOException {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": {\"content\": \"<s>\"}, "
                + "\"eos_token\": \"</s>\", \"chat_template\": \"{{ bos_token }}{% for m in messages %}[{{ m.role }}]"
                + "{{ m.content }}{{ eos_token }}{% endfor %}\"}");
        ChatTemplate t = ChatTemplate.load(dir);
        assertThat(t.render(List.of(ChatMessage.user("a"), ChatMessage.assistant("b")), false, null))
                .isEqualTo("<s>[user]a</s>[assistant]b</s>");
    }

    @Test
    void namedTemplatesAndSeparateFiles() throws IOException {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": [{\"name\": \"tool_use\", "
                + "\"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}]}");
        assertThat(ChatTemplate.load(dir).render(List.of(), false, null)).isEqualTo("D");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": [{\"name\": \"x\", \"template\": \"T\"}]}");
        assertThatThrownBy(() -> ChatTemplate.load(dir)).hasMessageContaining("none is named 'default'");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{}");
        // transformers writes the template beside the config; Jinja2 drops its final newline
        Files.writeString(dir.resolve("chat_template.jinja"), "{{ messages|length }} turns\n");
        assertThat(ChatTemplate.load(dir).render(List.of(ChatMessage.user("x")), false, null)).isEqualTo("1 turns");
    }

    @Test
    void reservedVariablesCannotBeOverridden() {
        assertThatThrownBy(() -> qwen.render(List.of(), true, Map.of("messages", List.of())))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'messages'");
    }
}
