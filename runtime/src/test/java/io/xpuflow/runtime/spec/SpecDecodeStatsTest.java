package io.xpuflow.runtime.spec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class SpecDecodeStatsTest {
    @Test
    void countsDraftsAcceptancePerPositionAndMeanAcceptedLength() {
        SpecDecodeStats s = new SpecDecodeStats(3);
        s.record(3, 3);
        s.record(3, 1);
        s.record(2, 0);
        s.record(0, 0); // no verification
        SpecDecodeStats.Snapshot snap = s.snapshot();
        assertThat(snap.draftTokens()).isEqualTo(8);
        assertThat(snap.acceptedTokens()).isEqualTo(4);
        assertThat(snap.verificationSteps()).isEqualTo(3);
        assertThat(snap.draftedAtPosition()).containsExactly(3, 3, 2);
        assertThat(snap.acceptedAtPosition()).containsExactly(2, 1, 1);
        assertThat(snap.acceptanceRate()).isEqualTo(0.5);
        assertThat(snap.meanAcceptedLength()).isCloseTo(1 + 4.0 / 3, within(1e-12));
        assertThat(snap.acceptanceRateAt(0)).isCloseTo(2.0 / 3, within(1e-12));
        assertThat(snap.acceptanceRateAt(2)).isEqualTo(0.5);
    }

    @Test
    void anEmptySnapshotHasZeroRatesAndSnapshotsDoNotChangeLater() {
        SpecDecodeStats s = new SpecDecodeStats(2);
        SpecDecodeStats.Snapshot empty = s.snapshot();
        assertThat(empty.acceptanceRate()).isZero();
        assertThat(empty.meanAcceptedLength()).isZero();
        assertThat(empty.acceptanceRateAt(1)).isZero();
        s.record(2, 2);
        assertThat(empty.acceptedAtPosition()).containsExactly(0, 0);
        empty.acceptedAtPosition()[0] = 7;
        assertThat(empty.acceptedAtPosition()).containsExactly(0, 0);
        assertThat(s.snapshot().acceptedAtPosition()).containsExactly(1, 1);
        assertThat(s.toString()).contains("2 drafts, 2 accepted (100.0%)");
    }

    @Test
    void refusesImpossibleCounts() {
        SpecDecodeStats s = new SpecDecodeStats(2);
        assertThatThrownBy(() -> s.record(3, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> s.record(1, 2)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> s.record(1, -1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new SpecDecodeStats(0)).isInstanceOf(IllegalArgumentException.class);
    }
}
