package io.xpuflow.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.tokenizer.GoldenCases.Case;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** {@link Tokenizer.Stream}: pushing the ids one by one gives the full decode, in chunks of whole characters. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DecodeStreamTest {
    private Tokenizer stories;
    private Tokenizer qwen;

    @BeforeAll
    void load() {
        stories = Tokenizer.load(GoldenCases.stories());
        qwen = Tokenizer.load(GoldenCases.qwen3());
    }

    Stream<Case> cases() {
        return GoldenCases.all();
    }

    private Tokenizer tokenizer(Case c) {
        return c.tokenizer().equals("qwen3") ? qwen : stories;
    }

    /** Streams ids, checking every chunk; returns the chunks (the last one from flush). */
    static List<String> stream(Tokenizer t, int[] ids, boolean skipSpecial) {
        Tokenizer.Stream s = t.newDecodeStream(skipSpecial);
        List<String> chunks = new ArrayList<>();
        for (int id : ids) {
            String chunk = s.push(id);
            assertWholeCharacters(chunk);
            chunks.add(chunk);
        }
        String rest = s.flush();
        assertWholeCharacters(rest);
        chunks.add(rest);
        return chunks;
    }

    static void assertWholeCharacters(String chunk) {
        for (int i = 0; i < chunk.length(); i++) {
            char c = chunk.charAt(i);
            if (Character.isHighSurrogate(c)) {
                assertThat(i + 1 < chunk.length() && Character.isLowSurrogate(chunk.charAt(i + 1)))
                        .as("high surrogate at %d of %s is paired", i, chunk).isTrue();
                i++;
            } else {
                assertThat(Character.isLowSurrogate(c)).as("lone low surrogate at %d of %s", i, chunk).isFalse();
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void streamingEveryGoldenGivesTheFullDecode(Case c) {
        for (boolean skip : new boolean[] {false, true}) {
            Tokenizer t = tokenizer(c);
            List<String> chunks = stream(t, c.ids(), skip);
            assertThat(String.join("", chunks)).as("skipSpecial=%s", skip).isEqualTo(t.decode(c.ids(), skip));
            assertThat(chunks).as("valid text never streams U+FFFD").noneMatch(s -> s.indexOf('\uFFFD') >= 0);
            assertThat(chunks.get(chunks.size() - 1)).as("nothing is left for flush").isEmpty();
        }
    }

    @Test
    void aCharacterSpreadOverByteTokensIsHeldUntilComplete() {
        // 你 = E4 BD A0: three byte-fallback tokens in stories260k, which has no token for it
        int[] ids = {stories.tokenId("<0xE4>").getAsInt(), stories.tokenId("<0xBD>").getAsInt(),
                stories.tokenId("<0xA0>").getAsInt()};
        Tokenizer.Stream s = stories.newDecodeStream(true);
        assertThat(s.push(ids[0])).isEmpty();
        assertThat(s.push(ids[1])).isEmpty();
        assertThat(s.push(ids[2])).isEqualTo("你");
        assertThat(s.flush()).isEmpty();
    }

    @Test
    void byteLevelTokensThatSplitAnEmojiAreHeldUntilComplete() {
        // byte-level: each alphabet character is one byte; 😀 = F0 9F 98 80
        int[] ids = new int[4];
        byte[] bytes = "😀".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        for (int i = 0; i < 4; i++) {
            ids[i] = qwen.tokenId(String.valueOf(ByteLevelAlphabet.charOf(bytes[i]))).getAsInt();
        }
        Tokenizer.Stream s = qwen.newDecodeStream(false);
        assertThat(s.push(ids[0])).isEmpty();
        assertThat(s.push(ids[1])).isEmpty();
        assertThat(s.push(ids[2])).isEmpty();
        assertThat(s.push(ids[3])).isEqualTo("😀");
        assertThat(qwen.decode(ids, false)).isEqualTo("😀");
    }

    @Test
    void anIncompleteCharacterAtTheEndIsFlushedAsOneReplacement() {
        byte[] bytes = "你".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        int first = qwen.tokenId(String.valueOf(ByteLevelAlphabet.charOf(bytes[0]))).getAsInt();
        int hello = qwen.encode("Hi", false)[0];
        Tokenizer.Stream s = qwen.newDecodeStream(false);
        assertThat(s.push(hello)).isEqualTo("Hi");
        assertThat(s.push(first)).isEmpty();
        assertThat(s.flush()).isEqualTo("\uFFFD");
        assertThat(qwen.decode(new int[] {hello, first}, false)).isEqualTo("Hi\uFFFD");
        // the stream is reset by flush and can be used again
        assertThat(s.push(hello)).isEqualTo("Hi");
    }

    @Test
    void anInvalidByteIsEmittedAsReplacementWithoutWaiting() {
        // a lone continuation byte can never become valid: no reason to hold it back
        int cont = qwen.tokenId(String.valueOf(ByteLevelAlphabet.charOf(0x80))).getAsInt();
        Tokenizer.Stream s = qwen.newDecodeStream(false);
        assertThat(s.push(cont)).isEqualTo("\uFFFD");
        assertThat(s.push(qwen.encode("ok", false)[0])).isEqualTo("ok");
    }

    @Test
    void skippedSpecialTokensAndStrippedSpacesStreamLikeTheFullDecode() {
        int[] ids = stories.encode("  two spaces\n and <s> inside", true);
        for (boolean skip : new boolean[] {false, true}) {
            assertThat(String.join("", stream(stories, ids, skip))).isEqualTo(stories.decode(ids, skip));
        }
        int[] chat = qwen.encode("<|im_start|>user\nHi 😀<|im_end|>\n<|im_start|>assistant\n", false);
        assertThat(String.join("", stream(qwen, chat, true))).isEqualTo("user\nHi 😀\nassistant\n");
    }

    @Test
    void anOutputStreamAfterAPromptDecodesLikeTheDifferenceOfFullDecodes() {
        for (Tokenizer t : List.of(stories, qwen)) {
            int[] all = t.encode("Lily went to the park. 你好, she said 😀 and ran off.", true);
            for (int split = 1; split < all.length; split++) {
                int[] prompt = java.util.Arrays.copyOf(all, split);
                Tokenizer.Stream s = t.newDecodeStream(true, prompt);
                StringBuilder out = new StringBuilder();
                for (int i = split; i < all.length; i++) {
                    String chunk = s.push(all[i]);
                    assertWholeCharacters(chunk);
                    out.append(chunk);
                }
                out.append(s.flush());
                String full = t.decode(all, true);
                String head = t.decode(prompt, true);
                if (!head.contains("\uFFFD")) { // a character split at the prompt's end decodes differently
                    assertThat(out.toString()).as("%s split at %d", t, split).isEqualTo(full.substring(head.length()));
                }
            }
        }
        // the word after a SentencePiece prompt keeps its space; at the start of a text it has none
        int[] lily = stories.encode("Lily", true);
        int[] and = stories.encode("Lily and", true);
        Tokenizer.Stream s = stories.newDecodeStream(true, lily);
        assertThat(s.push(and[and.length - 1])).isEqualTo(" and");
    }
}
