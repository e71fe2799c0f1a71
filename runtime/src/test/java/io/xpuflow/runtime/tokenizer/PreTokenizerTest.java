package io.xpuflow.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.tokenizer.PreTokenizer.Behavior;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Components against the examples of the Hugging Face tokenizers documentation and tests. */
class PreTokenizerTest {
    private static List<String> split(Behavior b, String text) {
        return new PreTokenizer.Split(Pattern.compile("-"), b, false).apply(List.of(text), true);
    }

    @Test
    void theFiveSplitBehaviours() {
        String s = "the-final--countdown";
        assertThat(split(Behavior.REMOVED, s)).containsExactly("the", "final", "countdown");
        assertThat(split(Behavior.ISOLATED, s)).containsExactly("the", "-", "final", "-", "-", "countdown");
        assertThat(split(Behavior.MERGED_WITH_PREVIOUS, s)).containsExactly("the-", "final-", "-", "countdown");
        assertThat(split(Behavior.MERGED_WITH_NEXT, s)).containsExactly("the", "-final", "-", "-countdown");
        assertThat(split(Behavior.CONTIGUOUS, s)).containsExactly("the", "-", "final", "--", "countdown");
    }

    @Test
    void invertKeepsTheMatches() {
        PreTokenizer p = new PreTokenizer.Split(Pattern.compile("\\w+"), Behavior.REMOVED, true);
        assertThat(p.apply(List.of("Hey friend! "), true)).containsExactly("Hey", "friend");
    }

    @Test
    void metaspaceMarksAndSplitsWords() {
        PreTokenizer always = new PreTokenizer.Metaspace("▁", "always", true);
        assertThat(always.apply(List.of("Hey friend!"), true)).containsExactly("▁Hey", "▁friend!");
        assertThat(always.apply(List.of("a  b"), true)).containsExactly("▁a", "▁", "▁b");
        PreTokenizer first = new PreTokenizer.Metaspace("▁", "first", true);
        assertThat(first.apply(List.of("Hey", "you"), true)).containsExactly("▁Hey", "you");
        assertThat(first.apply(List.of("Hey"), false)).containsExactly("Hey");
    }

    @Test
    void byteLevelSpellsBytes() {
        PreTokenizer gpt2 = new PreTokenizer.ByteLevel(true, true);
        assertThat(gpt2.apply(List.of("Hello my friend, how is your day going?"), true)).containsExactly(
                "ĠHello", "Ġmy", "Ġfriend", ",", "Ġhow", "Ġis", "Ġyour", "Ġday", "Ġgoing", "?");
        assertThat(new PreTokenizer.ByteLevel(false, false).apply(List.of("é\n"), true)).containsExactly("Ã©Ċ");
    }

    @Test
    void theByteAlphabetIsABijection() {
        java.util.Set<Character> seen = new java.util.HashSet<>();
        for (int b = 0; b < 256; b++) {
            char c = ByteLevelAlphabet.charOf(b);
            assertThat(seen.add(c)).isTrue();
            assertThat(ByteLevelAlphabet.byteOf(c)).isEqualTo(b);
        }
        assertThat(ByteLevelAlphabet.charOf(' ')).isEqualTo('Ġ');
        assertThat(ByteLevelAlphabet.byteOf('<')).isEqualTo('<');
        assertThat(ByteLevelAlphabet.byteOf('你')).isEqualTo(-1);
    }

    @Test
    void utf8ReplacesMaximalInvalidSubparts() {
        // the Unicode / WHATWG examples: F0 80 80 is three invalid bytes; E1 80 is one truncated character
        byte[] b = {(byte) 0x61, (byte) 0xF0, (byte) 0x80, (byte) 0x80, (byte) 0xE1, (byte) 0x80, (byte) 0x62};
        StringBuilder sb = new StringBuilder();
        assertThat(Utf8.decode(b, b.length, sb, false)).isZero();
        assertThat(sb.toString()).isEqualTo("a\uFFFD\uFFFD\uFFFD\uFFFDb");
        byte[] tail = {(byte) 0x61, (byte) 0xF0, (byte) 0x9F, (byte) 0x98};
        sb.setLength(0);
        assertThat(Utf8.decode(tail, tail.length, sb, true)).isEqualTo(3);
        assertThat(sb.toString()).isEqualTo("a");
    }
}
