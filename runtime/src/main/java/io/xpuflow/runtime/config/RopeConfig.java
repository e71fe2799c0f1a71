package io.xpuflow.runtime.config;

/**
 * Rotary position embedding frequencies.
 *
 * @param theta the base
 * @param scaling how the frequencies are stretched for long contexts
 */
public record RopeConfig(double theta, Scaling scaling) {

    /** Frequency scaling, as in {@code rope_scaling} of Hugging Face configs. */
    public sealed interface Scaling permits None, Linear, Llama3 {}

    public record None() implements Scaling {}

    public record Linear(double factor) implements Scaling {}

    public record Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions)
            implements Scaling {}

    public static RopeConfig plain(double theta) {
        return new RopeConfig(theta, new None());
    }

    /**
     * Inverse frequencies of the {@code rotaryDim / 2} rotated pairs, computed in FP32 the way the
     * Hugging Face reference does ({@code 1 / theta^(2i / dim)}), then scaled.
     */
    public float[] inverseFrequencies(int rotaryDim) {
        float[] inv = new float[rotaryDim / 2];
        for (int i = 0; i < inv.length; i++) {
            float exponent = (float) (2 * i) / (float) rotaryDim;
            inv[i] = 1.0f / (float) Math.pow(theta, exponent);
        }
        if (scaling instanceof Linear linear) {
            for (int i = 0; i < inv.length; i++) {
                inv[i] = (float) (inv[i] / linear.factor());
            }
        } else if (scaling instanceof Llama3 l3) {
            double lowWavelen = l3.originalMaxPositions() / l3.lowFreqFactor();
            double highWavelen = l3.originalMaxPositions() / l3.highFreqFactor();
            for (int i = 0; i < inv.length; i++) {
                double f = inv[i];
                double wavelen = 2 * Math.PI / f;
                if (wavelen > lowWavelen) {
                    inv[i] = (float) (f / l3.factor());
                } else if (wavelen >= highWavelen) {
                    double smooth = (l3.originalMaxPositions() / wavelen - l3.lowFreqFactor())
                            / (l3.highFreqFactor() - l3.lowFreqFactor());
                    inv[i] = (float) ((1 - smooth) * f / l3.factor() + smooth * f);
                }
            }
        }
        return inv;
    }
}
