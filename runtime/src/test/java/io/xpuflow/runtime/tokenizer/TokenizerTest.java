package io.xpuflow.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.text.Normalizer.Form;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The tokenizer API on the two fixture tokenizers: lookups, special tokens, round trips, long prompts. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TokenizerTest {
    private static final Logger LOG = LoggerFactory.getLogger(TokenizerTest.class);

    private Tokenizer stories;
    private Tokenizer qwen;

    @BeforeAll
    void load() {
        stories = Tokenizer.load(GoldenCases.stories());
        qwen = Tokenizer.load(GoldenCases.qwen3());
    }

    @Test
    void storiesVocabularyAndSpecialTokens() {
        assertThat(stories.vocabSize()).isEqualTo(512);
        assertThat(stories.bosId()).isEqualTo(1);
        // eos_token </s> and generation_config's eos_token_id 2 are the same id
        assertThat(stories.eosIds()).containsExactly(2);
        assertThat(stories.specialIds()).containsExactly(0, 1, 2);
        assertThat(stories.token(1)).isEqualTo("<s>");
        assertThat(stories.tokenId("<0x0A>")).hasValue(13);
        assertThat(stories.tokenId("no such token")).isEmpty();
    }

    @Test
    void qwenVocabularyAndSpecialTokens() {
        assertThat(qwen.vocabSize()).isEqualTo(151669);
        assertThat(qwen.bosId()).isNull();
        assertThat(qwen.eosIds()).containsExactly(151645);
        // <|endoftext|> .. <|video_pad|> are special; <tool_call>, <think> and friends are added but not special
        assertThat(qwen.specialIds()).hasSize(14).contains(151643, 151644, 151645, 151656)
                .doesNotContain(151657, 151667);
        assertThat(qwen.token(9707)).isEqualTo("Hello");
        assertThat(qwen.token(1879)).isEqualTo("Ġworld");
        assertThat(qwen.tokenId("<|im_end|>")).hasValue(151645);
        assertThat(qwen.tokenId("<think>")).hasValue(151667);
        assertThatThrownBy(() -> qwen.token(151669)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("151669");
        assertThatThrownBy(() -> qwen.token(-1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void specialTokensAroundTheTextAreOptional() {
        int[] withBos = stories.encode("Hello world", true);
        assertThat(withBos[0]).isEqualTo(1);
        assertThat(stories.encode("Hello world", false)).containsExactly(Arrays.copyOfRange(withBos, 1, withBos.length));
        assertThat(qwen.encode("Hello world", true)).containsExactly(qwen.encode("Hello world", false));
        assertThat(stories.decode(withBos, true)).isEqualTo("Hello world");
        assertThat(stories.decode(withBos, false)).isEqualTo("<s> Hello world");
    }

    @Test
    void addedTokensInTheTextAreMatchedWholeAndNeverMerged() {
        int[] ids = qwen.encode("x<|im_start|><|im_end|><think>y", false);
        assertThat(ids).containsSubsequence(151644, 151645, 151667);
        assertThat(qwen.decode(ids, false)).isEqualTo("x<|im_start|><|im_end|><think>y");
        // skipping removes the special ones only; <think> is not special
        assertThat(qwen.decode(ids, true)).isEqualTo("x<think>y");
        // a token split over two words of the text is not matched
        assertThat(qwen.encode("<|im_ start|>", false)).doesNotContain(151644);
        // stories: <s> and </s> in the text are special tokens too
        assertThat(stories.encode("a</s>b", false)).contains(2);
    }

    @Test
    void idsOutsideTheVocabularyAreSkippedWhenDecoding() {
        // the Qwen3 embedding table has 151936 rows, more than the tokenizer's 151669 ids
        assertThat(qwen.decode(new int[] {9707, 151700, 1879, -5}, false)).isEqualTo("Hello world");
    }

    @Test
    void unpairedSurrogatesAreEncodedAsReplacementCharacters() {
        String broken = "a\uD83Db\uDE00c\uD83D";
        assertThat(qwen.decode(qwen.encode(broken, false), false)).isEqualTo("a\uFFFDb\uFFFDc\uFFFD");
        assertThat(stories.decode(stories.encode(broken, false), false)).isEqualTo("a\uFFFDb\uFFFDc\uFFFD");
    }

    @Test
    void invalidBytesDecodeToReplacementCharacters() {
        // a lone lead byte, then a lone continuation byte
        int lead = stories.tokenId("<0xE4>").getAsInt();
        int cont = stories.tokenId("<0x80>").getAsInt();
        int a = stories.encode("a", false)[0];
        // Hugging Face's byte fallback: an invalid run becomes one U+FFFD per byte token
        assertThat(stories.decode(new int[] {a, lead, cont, a}, true)).isEqualTo("a\uFFFD\uFFFD a");
        int qLead = qwen.tokenId(String.valueOf(ByteLevelAlphabet.charOf(0xE4))).getAsInt();
        int qCont = qwen.tokenId(String.valueOf(ByteLevelAlphabet.charOf(0x80))).getAsInt();
        // byte-level: E4 80 is the valid start of a 3-byte character cut short: one U+FFFD for both bytes
        assertThat(qwen.decode(new int[] {qLead, qCont, 64}, false)).isEqualTo("\uFFFDa");
    }

    /** Random text from scripts that stress normalization and byte fallback, plus unpaired surrogates. */
    static String randomText(SplittableRandom r, int length, boolean withLoneSurrogates) {
        int[][] ranges = {
            {0x20, 0x7E}, {0x20, 0x7E}, {0x20, 0x7E}, // ASCII, often
            {0x09, 0x0D},                               // tab, newlines
            {0xC0, 0x17F},                              // Latin accents
            {0x300, 0x36F},                             // combining marks
            {0x391, 0x3C9},                             // Greek
            {0x4E00, 0x9FFF},                           // CJK
            {0xAC00, 0xD7A3},                           // Hangul syllables (NFC-sensitive)
            {0x1100, 0x1112},                           // Hangul leading jamo (compose under NFC)
            {0x1F300, 0x1F6FF},                         // emoji
            {0x1F1E6, 0x1F1FF},                         // regional indicators (flags)
            {0x200D, 0x200D},                           // zero-width joiner
            {0x10000, 0x1FFFF},                         // other supplementary planes
        };
        StringBuilder sb = new StringBuilder();
        while (sb.length() < length) {
            if (withLoneSurrogates && r.nextInt(40) == 0) {
                sb.append((char) (r.nextBoolean() ? 0xD800 + r.nextInt(0x400) : 0xDC00 + r.nextInt(0x400)));
                continue;
            }
            int[] range = ranges[r.nextInt(ranges.length)];
            int cp = range[0] + r.nextInt(range[1] - range[0] + 1);
            if (Character.getType(cp) == Character.UNASSIGNED && cp > 0xFFFF) {
                continue;
            }
            sb.appendCodePoint(cp);
        }
        return sb.toString();
    }

    @Test
    void randomUnicodeRoundTrips() {
        SplittableRandom r = new SplittableRandom(20260521);
        for (int i = 0; i < 300; i++) {
            String text = randomText(r, 1 + r.nextInt(60), i % 3 == 0);
            String clean = Utf8.replaceLoneSurrogates(text);
            // Qwen normalizes to NFC and is otherwise lossless (byte-level)
            int[] q = qwen.encode(text, true);
            String expectedQ = java.text.Normalizer.normalize(clean, Form.NFC);
            assertThat(qwen.decode(q, true)).as("qwen round trip of %s", escape(text)).isEqualTo(expectedQ);
            assertThat(String.join("", DecodeStreamTest.stream(qwen, q, true))).isEqualTo(expectedQ);
            // stories: spaces are ▁ inside, and the text never contains ▁ here; byte fallback covers the rest
            int[] s = stories.encode(text, true);
            assertThat(stories.decode(s, true)).as("stories round trip of %s", escape(text)).isEqualTo(clean);
            assertThat(String.join("", DecodeStreamTest.stream(stories, s, true))).isEqualTo(clean);
        }
    }

    @Test
    void oneTokenizerServesManyThreads() throws Exception {
        List<GoldenCases.Case> cases = GoldenCases.qwen3Cases();
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            List<java.util.concurrent.Future<Boolean>> results = new java.util.ArrayList<>();
            for (int task = 0; task < 16; task++) {
                int offset = task;
                results.add(pool.submit(() -> {
                    for (int k = 0; k < cases.size(); k++) {
                        GoldenCases.Case c = cases.get((k + offset) % cases.size());
                        if (!Arrays.equals(qwen.encode(c.text(), true), c.ids())
                                || !qwen.decode(c.ids(), false).equals(c.decoded())) {
                            return false;
                        }
                    }
                    return true;
                }));
            }
            for (java.util.concurrent.Future<Boolean> r : results) {
                assertThat(r.get()).isTrue();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void storiesSpellsUnknownCharactersWithByteTokens() {
        // no token for 你 (E4 BD A0)
        int[] ids = stories.encode("你", false);
        assertThat(Arrays.stream(ids).mapToObj(stories::token).toList()).containsExactly("▁", "<0xE4>", "<0xBD>", "<0xA0>");
    }

    private static String escape(String s) {
        StringBuilder sb = new StringBuilder();
        s.codePoints().forEach(cp -> sb.append(cp < 0x7F && cp >= 0x20 ? String.valueOf((char) cp)
                : String.format("\\u{%x}", cp)));
        return sb.toString();
    }

    /** A prompt of at least 1 MiB of UTF-8 from the golden texts: prose, code, CJK, emoji, chat markup. */
    static String mebibytePrompt() {
        List<String> parts = GoldenCases.qwen3Cases().stream().map(GoldenCases.Case::text).toList();
        StringBuilder sb = new StringBuilder();
        int bytes = 0;
        for (int i = 0; bytes < (1 << 20); i++) {
            String p = parts.get(i % parts.size()) + (i % 7 == 0 ? "\n\n" : " ");
            sb.append(p);
            bytes += p.getBytes(StandardCharsets.UTF_8).length;
        }
        return sb.toString();
    }

    @Test
    void aMebibytePromptEncodesQuickly() {
        String prompt = mebibytePrompt();
        int utf8 = prompt.getBytes(StandardCharsets.UTF_8).length;
        for (Tokenizer t : List.of(qwen, stories)) {
            for (int round = 0; round < 3; round++) { // the first round includes JIT warm-up and the word cache
                long start = System.nanoTime();
                int[] ids = t.encode(prompt, false);
                long ms = (System.nanoTime() - start) / 1_000_000;
                LOG.info("encode of {} bytes ({} chars) with {}: {} ids in {} ms (round {})", utf8, prompt.length(), t,
                        ids.length, ms, round);
                if (round == 0) {
                    assertThat(t.decode(ids, false)).isEqualTo(prompt);
                }
            }
        }
    }

    @Test
    void aMebibyteSingleWordEncodes() {
        // one word of 1 MiB: BPE sees it whole (no cache, no pre-tokenizer help); the heap keeps it O(n log n)
        String word = "ab".repeat(1 << 19);
        for (Tokenizer t : List.of(qwen, stories)) {
            long start = System.nanoTime();
            int[] ids = t.encode(word, false);
            long ms = (System.nanoTime() - start) / 1_000_000;
            LOG.info("encode of one {}-char word with {}: {} ids in {} ms", word.length(), t, ids.length, ms);
            assertThat(t.decode(ids, false)).isEqualTo(word);
        }
    }
}
