package io.xpuflow.runtime.spec;

/**
 * Chooses, per request and per step, how many draft tokens to propose: the configured k while drafts
 * pay off, fewer when they are often rejected, none when they are rarely accepted, with an occasional
 * one-token probe so a request whose text becomes predictable gets speculation back.
 *
 * <p><b>Cost model.</b> A step with k drafts costs about {@code 1 + c·k} plain decode steps: c is what
 * one draft token adds (drafting it, plus verifying one more position); it yields {@code 1 + E[accepted]}
 * tokens. With each draft accepted with probability a once the ones before it were (the usual geometric
 * model), {@code E[accepted | k] = a + a² + ... + a^k}. The policy picks the k in 0..configured that
 * maximizes tokens per unit of cost {@code (1 + E[accepted | k]) / (1 + c·k)}; k = 0 (plain decoding,
 * ratio 1) wins when {@code a <= c}: drafts are then rejected too often to pay for themselves.
 *
 * <p><b>Hysteresis.</b> Speculation switches off only when the estimate falls below
 * {@code OFF_FRACTION · c}; between that and c one draft is kept. Near break-even one draft costs little,
 * while switching off forgoes the gain until a probe succeeds, and a noisy estimate of a real a = 0.3 dips
 * below c = 0.1 after a few unlucky steps. In simulation (a = 0.15 .. 0.8, 300 steps) this keeps 96-99% of
 * the tokens per cost of the best fixed k, against 91% without it.
 *
 * <p><b>Estimating a.</b> Every draft position the verification looked at is one trial: the accepted
 * drafts, plus the first rejected one (positions after it were never judged). a is the ratio of
 * exponential moving averages of accepted drafts and trials per verified step (weight {@link #EMA_WEIGHT}),
 * which follows a request whose text changes character within a few steps. It starts from a prior of
 * {@link #PRIOR_ACCEPTANCE} worth one step, so a single unlucky first step does not switch speculation
 * off, and the first step uses the configured k.
 *
 * <p><b>Probing.</b> While off, every {@link #probeInterval()}-th step drafts one token. An accepted probe
 * lifts a to about {@code EMA_WEIGHT} (0.25), above the default c, and speculation resumes; a rejected one
 * keeps it off. The interval is {@link #PROBE_INTERVAL} steps, longer where drafts cost more, so that
 * probing costs about {@link #PROBE_COST_SHARE} (1.25%) of plain decoding: 8 steps at the default c, 40
 * on a mixture of experts. A probe after a pause also costs more than one draft (the MTP layers catch up
 * on the rows since the last draft, in a call of its own), which the longer interval absorbs.
 *
 * <p><b>Bound with useless drafts</b> (a = 0, e.g. an MTP head with random weights), default c = 0.1, k =
 * 4: the estimate falls from the prior 0.6 through 0.45, 0.34, 0.25, ... below c / 2 after 9 verified
 * steps drafting 4, 2, 1, 1, 1, 1, 1, 1, 1 tokens, 1.3 plain steps of extra work in all, then the probes
 * add 1.25%. That is about 8% over a 16-token generation, 5% over 32 and 2% over 128 — within the 10%
 * budget of the issue. A larger real c only switches off sooner.
 *
 * <p>With {@code adaptive} false the configured k is used every step. One instance per request, used by
 * the engine thread only; not thread-safe.
 */
public final class AdaptiveDraftLength {
    /**
     * Default cost of one draft token relative to a plain decode step. Decode is bound by reading the
     * weights, so verifying a few more positions in the same pass is cheap; an MTP draft runs one extra
     * layer and the LM head. 0.1 is a deliberately conservative middle for both methods.
     */
    public static final double DEFAULT_DRAFT_COST = 0.1;
    /**
     * Cost of one draft token on a mixture-of-experts model: every verified position routes to its own
     * experts, so a verification step reads up to 1 + k experts' weights per layer instead of one token's,
     * and an MTP draft runs the LM head once more. Measured on mimo-v2-bench (32 experts, top-4, random MTP
     * weights, bf16, 2 threads): fixed k = 2 with nothing accepted decodes at 0.50-0.54 of plain speed, a
     * draft costing about half a plain step.
     */
    public static final double MOE_DRAFT_COST = 0.5;
    /** Weight of the newest step in the moving averages: about the last 4 steps dominate. */
    public static final double EMA_WEIGHT = 0.25;
    /** Acceptance assumed before the first verification, worth one step of trials. */
    public static final double PRIOR_ACCEPTANCE = 0.6;
    /** While off, one step in this many (at least) drafts a single probe token. */
    public static final int PROBE_INTERVAL = 8;
    /** Share of plain decoding that probing may cost while off, at the assumed draft cost. */
    public static final double PROBE_COST_SHARE = 0.0125;
    /** Speculation switches off when the acceptance estimate falls below this fraction of c. */
    public static final double OFF_FRACTION = 0.5;

    private final int maxDraftTokens;
    private final boolean adaptive;
    private final double draftCost;
    private double emaAccepted = PRIOR_ACCEPTANCE;
    private double emaTrials = 1;
    private final int probeInterval;
    private int k;
    private int stepsOff;

    /** The draft cost to assume for a model: {@link #MOE_DRAFT_COST} with routed experts, else the default. */
    public static double draftCostFor(boolean mixtureOfExperts) {
        return mixtureOfExperts ? MOE_DRAFT_COST : DEFAULT_DRAFT_COST;
    }

    /** With {@link #DEFAULT_DRAFT_COST}. */
    public AdaptiveDraftLength(int maxDraftTokens, boolean adaptive) {
        this(maxDraftTokens, adaptive, DEFAULT_DRAFT_COST);
    }

    /**
     * @param maxDraftTokens the configured k (1..{@link SpeculativeConfig#MAX_SPECULATIVE_TOKENS})
     * @param draftCost c, cost of one draft token in plain decode steps (> 0)
     */
    public AdaptiveDraftLength(int maxDraftTokens, boolean adaptive, double draftCost) {
        if (maxDraftTokens < 1 || maxDraftTokens > SpeculativeConfig.MAX_SPECULATIVE_TOKENS) {
            throw new IllegalArgumentException("draft length must be in [1, "
                    + SpeculativeConfig.MAX_SPECULATIVE_TOKENS + "], was " + maxDraftTokens);
        }
        if (!(draftCost > 0) || Double.isInfinite(draftCost)) {
            throw new IllegalArgumentException("draft cost must be a finite number > 0, was " + draftCost);
        }
        this.maxDraftTokens = maxDraftTokens;
        this.adaptive = adaptive;
        this.draftCost = draftCost;
        this.probeInterval = Math.max(PROBE_INTERVAL, (int) Math.ceil(draftCost / PROBE_COST_SHARE - 1e-9));
        this.k = maxDraftTokens;
    }

    /**
     * The number of drafts to propose for the coming step, 0 for a plain step. Call exactly once per
     * decode step of the request: the steps while off are counted here to time the probes.
     */
    public int nextDraftLength() {
        if (k > 0) {
            return k;
        }
        if (++stepsOff >= probeInterval) {
            stepsOff = 0;
            return 1;
        }
        return 0;
    }

    /**
     * Records the outcome of a verified step. Steps that verified no draft (none proposed: no n-gram
     * match, or a plain step) carry no information and are ignored.
     *
     * @param proposed drafts verified this step
     * @param accepted of those, accepted (0..proposed)
     */
    public void record(int proposed, int accepted) {
        if (accepted < 0 || accepted > proposed) {
            throw new IllegalArgumentException("accepted " + accepted + " not in [0, " + proposed + "]");
        }
        if (proposed == 0 || !adaptive) {
            return;
        }
        int trials = accepted + (accepted < proposed ? 1 : 0);
        emaAccepted = (1 - EMA_WEIGHT) * emaAccepted + EMA_WEIGHT * accepted;
        emaTrials = (1 - EMA_WEIGHT) * emaTrials + EMA_WEIGHT * trials;
        int before = k;
        double a = acceptance();
        k = bestDraftLength(a);
        if (k == 0 && before > 0 && a >= OFF_FRACTION * draftCost) {
            k = 1; // hysteresis: near break-even keep one draft rather than switch off
        }
        if (k > 0 && before == 0) {
            stepsOff = 0;
        }
    }

    /** The draft length maximizing {@code (1 + E[accepted | k]) / (1 + c·k)}; ties to the shorter one. */
    private int bestDraftLength(double a) {
        int best = 0;
        double bestRatio = 1;
        double expected = 0;
        double ak = 1;
        for (int j = 1; j <= maxDraftTokens; j++) {
            ak *= a;
            expected += ak;
            double ratio = (1 + expected) / (1 + draftCost * j);
            // a small margin so that rounding does not flip between equal choices
            if (ratio > bestRatio * (1 + 1e-9)) {
                best = j;
                bestRatio = ratio;
            }
        }
        return best;
    }

    /** Steps between probes while speculation is off. */
    public int probeInterval() {
        return probeInterval;
    }

    /** Estimated probability that a draft is accepted given the ones before it were. */
    public double acceptance() {
        return emaTrials > 0 ? emaAccepted / emaTrials : 0;
    }

    /** Whether the request currently speculates (probes aside). */
    public boolean isSpeculating() {
        return k > 0;
    }

    /** The draft length in use while speculating; 0 while off. */
    public int currentDraftLength() {
        return k;
    }

    public int maxDraftTokens() {
        return maxDraftTokens;
    }

    public boolean adaptive() {
        return adaptive;
    }
}
