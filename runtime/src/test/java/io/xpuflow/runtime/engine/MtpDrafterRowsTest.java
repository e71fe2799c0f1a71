package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The MTP drafter's row buffers keep what is read later and stay bounded over a long sequence. */
class MtpDrafterRowsTest {

    @Test
    void droppedRowsAreForgottenAndKeptRowsKeepTheirValues() {
        MtpDrafter.Rows rows = new MtpDrafter.Rows(2);
        rows.ensure(5);
        for (int r = 0; r < 5; r++) {
            rows.data[rows.offset(r)] = r;
            rows.data[rows.offset(r) + 1] = -r;
        }
        rows.dropBelow(3);
        assertThat(rows.data[rows.offset(3)]).isEqualTo(3f);
        assertThat(rows.data[rows.offset(4) + 1]).isEqualTo(-4f);
        assertThatThrownBy(() -> rows.offset(2)).hasMessageContaining("MTP row 2 was dropped")
                .hasMessageContaining("kept from 3");
        rows.dropBelow(9); // past everything kept: nothing to move
        rows.ensure(10);
        assertThat(rows.offset(9)).isZero();
        rows.reset();
        assertThat(rows.offset(0)).isZero();
    }

    /** A decoding-like pattern (a few rows appended, the older ones dropped) over 10,000 positions. */
    @Test
    void storageStaysBoundedWhileDecoding() {
        MtpDrafter.Rows rows = new MtpDrafter.Rows(64);
        SplittableRandom rnd = new SplittableRandom(3);
        int m = 100;
        rows.ensure(m);
        while (m < 10_000) {
            int step = 1 + rnd.nextInt(4);
            rows.ensure(m + step);
            rows.data[rows.offset(m + step - 1)] = m;
            m += step;
            rows.dropBelow(m - 1);
            assertThat(rows.data[rows.offset(m - 1)]).isEqualTo(m - step);
        }
        // the prompt-sized first allocation (100 rows, grown once) is all it ever needs
        assertThat(rows.data.length).isLessThanOrEqualTo(200 * 64);
    }
}
