package io.xpuflow.runtime.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

/**
 * Inverse RoPE frequencies, with the expected values computed here from the published formulas
 * (Hugging Face {@code _compute_default_rope_parameters}, {@code _compute_linear_scaling_rope_parameters}
 * and {@code _compute_llama3_parameters}) rather than from the implementation.
 */
class RopeConfigTest {

    /** {@code 1 / theta^(2i / dim)} in double, rounded once to float. */
    private static float[] plain(double theta, int dim) {
        float[] out = new float[dim / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) (1.0 / Math.pow(theta, 2.0 * i / dim));
        }
        return out;
    }

    @Test
    void plainFrequenciesAreOneOverThetaToTheTwoIOverDim() {
        float[] inv = RopeConfig.plain(10000).inverseFrequencies(8);

        assertThat(inv).hasSize(4);
        // theta 10000, dim 8: 1, 10^-1, 10^-2, 10^-3 exactly as floats
        assertThat(inv).containsExactly(1.0f, 0.1f, 0.01f, 0.001f);
        assertThat(inv).containsExactly(plain(10000, 8));
    }

    @Test
    void plainFrequenciesOfALargeHeadMatchTheFormulaWithinFloatRounding() {
        float[] inv = RopeConfig.plain(500000).inverseFrequencies(128);
        float[] expected = plain(500000, 128);
        assertThat(inv).hasSize(64);
        for (int i = 0; i < inv.length; i++) {
            // power and quotient are each rounded to float (as in the reference): two units in the last place
            assertThat(inv[i]).as("entry %d", i).isCloseTo(expected[i], within(2 * Math.ulp(expected[i])));
        }
        for (int i = 1; i < inv.length; i++) {
            assertThat(inv[i]).isLessThan(inv[i - 1]);
        }
    }

    @Test
    void rotaryDimZeroHasNoFrequencies() {
        assertThat(RopeConfig.plain(10000).inverseFrequencies(0)).isEmpty();
    }

    @Test
    void linearScalingDividesEveryFrequencyByTheFactor() {
        float[] base = RopeConfig.plain(10000).inverseFrequencies(8);
        float[] scaled = new RopeConfig(10000, new RopeConfig.Linear(4.0)).inverseFrequencies(8);

        assertThat(scaled).hasSize(base.length);
        for (int i = 0; i < base.length; i++) {
            assertThat(scaled[i]).as("entry %d", i).isEqualTo(base[i] / 4.0f);
        }
        assertThat(scaled[0]).isEqualTo(0.25f);
    }

    @Test
    void noneScalingChangesNothing() {
        assertThat(new RopeConfig(10000, new RopeConfig.None()).inverseFrequencies(16))
                .containsExactly(RopeConfig.plain(10000).inverseFrequencies(16));
    }

    /**
     * Llama 3.1: theta 500000, head dim 128, factor 8, low_freq_factor 1, high_freq_factor 4, original
     * context 8192. Wavelengths below 8192/4 = 2048 keep their frequency, above 8192/1 = 8192 are slowed
     * down 8x, and the band between is interpolated with smooth = (8192 / wavelen - 1) / (4 - 1).
     */
    @Test
    void llama3ScalingOfLlama31() {
        double theta = 500000;
        int dim = 128;
        double factor = 8;
        double low = 1;
        double high = 4;
        int original = 8192;
        float[] base = RopeConfig.plain(theta).inverseFrequencies(dim);
        float[] got = new RopeConfig(theta, new RopeConfig.Llama3(factor, low, high, original)).inverseFrequencies(dim);

        assertThat(got).hasSize(64);
        int highBand = 0;
        int mediumBand = 0;
        int lowBand = 0;
        for (int i = 0; i < got.length; i++) {
            double f = base[i];
            // written in terms of the period in positions, as in Meta's reference apply_scaling
            double period = 2 * Math.PI / f;
            if (period < original / high) {
                highBand++;
                assertThat(got[i]).as("high-frequency entry %d is unchanged", i).isEqualTo(base[i]);
            } else if (period > original / low) {
                lowBand++;
                assertThat(got[i]).as("low-frequency entry %d is divided by 8", i).isEqualTo((float) (f / factor));
            } else {
                mediumBand++;
                double smooth = (original / period - low) / (high - low);
                assertThat(smooth).isBetween(0.0, 1.0);
                double expected = (1 - smooth) * (f / factor) + smooth * f;
                assertThat((double) got[i]).as("medium entry %d", i).isCloseTo(expected, within(expected * 1e-6));
                // strictly between the two extremes
                assertThat((double) got[i]).isGreaterThan(f / factor).isLessThan(f);
            }
        }
        // 500000^(i/64) < 2048 / 2pi for i <= 28; > 8192 / 2pi for i >= 35
        assertThat(highBand).isEqualTo(29);
        assertThat(mediumBand).isEqualTo(6);
        assertThat(lowBand).isEqualTo(29);
        assertThat(got[0]).isEqualTo(1.0f);
        assertThat(got[28]).isEqualTo(base[28]);
        assertThat(got[35]).isEqualTo((float) (base[35] / 8.0));

        // smooth: the ratio scaled/unscaled falls monotonically from 1 to 1/8 across the bands
        double previous = 1.0;
        for (int i = 0; i < got.length; i++) {
            double ratio = got[i] / (double) base[i];
            assertThat(ratio).as("ratio at %d", i).isLessThanOrEqualTo(previous + 1e-7).isBetween(1 / 8.0 - 1e-7, 1.0 + 1e-7);
            previous = ratio;
        }
    }

    /** The medium band's end points: smooth 1 at wavelen = original / high, 0 at original / low. */
    @Test
    void llama3InterpolationMatchesHandComputedValues() {
        // theta chosen so that dim 4 gives frequencies 1 and 1/theta^(1/2)
        double theta = 100;
        float[] base = RopeConfig.plain(theta).inverseFrequencies(4);
        assertThat(base).containsExactly(1.0f, 0.1f);
        // original 8, low 1, high 4: high band below wavelen 2, low band above 8;
        // wavelen of 0.1 is 2pi/0.1 = 62.8 (low band), of 1 is 2pi = 6.28 (medium band)
        float[] got = new RopeConfig(theta, new RopeConfig.Llama3(2.0, 1.0, 4.0, 8)).inverseFrequencies(4);
        double smooth = (8 / (2 * Math.PI) - 1.0) / 3.0;
        double expected0 = (1 - smooth) * 1.0 / 2.0 + smooth * 1.0;
        assertThat((double) got[0]).isCloseTo(expected0, within(1e-6));
        assertThat(got[1]).isEqualTo((float) (0.1f / 2.0));
    }
}
