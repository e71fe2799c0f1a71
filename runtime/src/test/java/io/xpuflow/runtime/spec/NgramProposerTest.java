package io.xpuflow.runtime.spec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class NgramProposerTest {
    static int[] propose(NgramProposer p, int k, int... tokens) {
        int[] out = new int[k];
        int n = p.propose(tokens, tokens.length, k, out);
        return Arrays.copyOf(out, n);
    }

    @Test
    void proposesTheTokensThatFollowedTheEarlierOccurrence() {
        NgramProposer p = new NgramProposer(1, 3);
        // ... 5 6 7 [8 9 1] ... 5 6 7 -> 8 9 1
        assertThat(propose(p, 3, 5, 6, 7, 8, 9, 1, 2, 5, 6, 7)).containsExactly(8, 9, 1);
    }

    @Test
    void prefersTheLongestSuffixOverAMoreRecentShorterOne() {
        NgramProposer p = new NgramProposer(1, 3);
        // the suffix 6 7 occurred at the start (followed by 1); 7 alone occurred more recently (followed by 2)
        assertThat(propose(p, 2, 6, 7, 1, 1, 7, 2, 6, 7)).containsExactly(1, 1);
    }

    @Test
    void prefersTheMostRecentOfEqualLengthOccurrences() {
        NgramProposer p = new NgramProposer(2, 2);
        assertThat(propose(p, 2, 3, 4, 10, 11, 3, 4, 20, 21, 3, 4)).containsExactly(20, 21);
    }

    @Test
    void proposesFewerThanKNearTheEnd() {
        NgramProposer p = new NgramProposer(1, 3);
        // 1 2 3 then 1 2 3 again: only 3 tokens follow the occurrence at the start
        assertThat(propose(p, 4, 1, 2, 3, 1, 2, 3)).containsExactly(1, 2, 3);
        assertThat(propose(p, 4, 1, 2, 3, 9, 1, 2, 3)).containsExactly(9, 1, 2, 3);
        // a repeated token: the most recent occurrence is right before the last one, one token follows it
        assertThat(propose(p, 4, 5, 5, 5, 5)).containsExactly(5);
    }

    @Test
    void proposesNothingWithoutAMatchOrBelowTheMinimum() {
        assertThat(propose(new NgramProposer(1, 3), 3, 1, 2, 3, 4)).isEmpty();
        assertThat(propose(new NgramProposer(2, 3), 3, 1, 2, 3, 2)).as("only a 1-gram recurs").isEmpty();
        assertThat(propose(new NgramProposer(1, 3), 3, 1)).isEmpty();
        assertThat(propose(new NgramProposer(1, 3), 3)).isEmpty();
        assertThat(propose(new NgramProposer(1, 3), 0, 1, 2, 1)).isEmpty();
    }

    @Test
    void readsOnlyTheGivenLength() {
        int[] tokens = {1, 2, 3, 1, 2, 99, 99};
        int[] out = new int[3];
        assertThat(new NgramProposer(1, 3).propose(tokens, 5, 3, out)).isEqualTo(3);
        assertThat(out).containsExactly(3, 1, 2);
        assertThatThrownBy(() -> new NgramProposer(1, 3).propose(tokens, 8, 3, out))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new NgramProposer(0, 3)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new NgramProposer(3, 2)).isInstanceOf(IllegalArgumentException.class);
    }

    /** Property against a direct transcription of the rule, over seeded random short-alphabet sequences. */
    @Test
    void agreesWithTheRuleAsStated() {
        SplittableRandom rnd = new SplittableRandom(11);
        for (int trial = 0; trial < 5000; trial++) {
            int len = rnd.nextInt(30);
            int[] t = rnd.ints(len, 0, 1 + rnd.nextInt(4)).toArray();
            int min = 1 + rnd.nextInt(3);
            int max = min + rnd.nextInt(3);
            int k = 1 + rnd.nextInt(4);
            assertThat(propose(new NgramProposer(min, max), k, t)).as("%s n %d..%d k %d", Arrays.toString(t), min, max, k)
                    .containsExactly(reference(t, min, max, k));
        }
    }

    /** For n from max down to min, the most recent earlier start j with t[j..j+n) == the last n tokens. */
    static int[] reference(int[] t, int min, int max, int k) {
        int len = t.length;
        for (int n = max; n >= min; n--) {
            if (len < n + 1) {
                continue;
            }
            for (int j = len - n - 1; j >= 0; j--) {
                if (Arrays.equals(t, j, j + n, t, len - n, len)) {
                    return Arrays.copyOfRange(t, j + n, Math.min(len, j + n + k));
                }
            }
        }
        return new int[0];
    }
}
