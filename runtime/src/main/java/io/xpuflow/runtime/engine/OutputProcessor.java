package io.xpuflow.runtime.engine;

import io.xpuflow.runtime.sample.Sampler;
import io.xpuflow.runtime.sample.SamplingException;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.spec.RejectionSampler;
import java.nio.FloatBuffer;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What happens to a request after a step produced its logits: the next token is sampled with the
 * request's own seeded generator (so its output does not depend on the batch), detokenised, checked
 * against the stop rules and streamed to the listener; and, once finished, its result is built and its
 * future completed. It never touches queues or KV blocks: it reports the final status and the scheduler
 * frees what the request held.
 *
 * <p>Owned by the engine's loop thread; not thread-safe.
 */
final class OutputProcessor {
    private static final Logger LOG = LoggerFactory.getLogger(OutputProcessor.class);

    private final Sampler sampler;
    private final RejectionSampler rejection;
    private final int vocabSize;
    private final Set<Integer> eosIds;
    private final int maxModelLen;
    private final EngineStats stats;
    private final String engineName;

    OutputProcessor(int vocabSize, Set<Integer> eosIds, int maxModelLen, EngineStats stats, String engineName) {
        this.sampler = new Sampler(vocabSize);
        this.rejection = new RejectionSampler(sampler, vocabSize);
        this.vocabSize = vocabSize;
        this.eosIds = Set.copyOf(eosIds);
        this.maxModelLen = maxModelLen;
        this.stats = stats;
        this.engineName = engineName;
    }

    /**
     * Samples the next token of a request from its logit row and applies every stop rule. Isolated: what
     * goes wrong there (non-finite logits, no token to choose, a detokeniser fault) concerns this request
     * only, so it fails alone ({@link RequestStatus#FINISHED_ERROR} with {@link RequestState#error} set)
     * and the others in the step go on.
     *
     * @param logits the step's logit rows, {@code [rows, vocab]} row-major
     * @return the request's final status if this token finished it, or null while it goes on
     */
    RequestStatus process(RequestState r, FloatBuffer logits, int logitRow) {
        try {
            return appendToken(r, logits, logitRow);
        } catch (RuntimeException e) {
            String what = e instanceof SamplingException ? "sampling" : "output processing";
            LOG.warn("Request {} failed in {} at output token {} on {}; the engine goes on", r.id, what,
                    r.numGenerated(), engineName, e);
            r.error = new GenerationException(GenerationException.Code.ENGINE_ERROR, r.id, what + " failed at output"
                    + " token " + r.numGenerated() + ": " + e.getMessage(), e);
            return RequestStatus.FINISHED_ERROR;
        }
    }

    /**
     * Verifies the drafts a step scored for a request ({@code 1 + drafts.length} logit rows from
     * {@code firstLogitRow}) and appends the emitted tokens one at a time through the stop rules, so a
     * stop, {@code max_tokens} or the max model length cuts them exactly where plain decoding would
     * have stopped. Fails the request alone, as {@link #process} does.
     *
     * @return the final status (null while the request goes on) and the scheduled positions to roll back
     */
    SpecOutcome processSpec(RequestState r, FloatBuffer logits, int firstLogitRow, int[] drafts) {
        int emitted = 0;
        try {
            RejectionSampler.Verification v = rejection.verify(logits, firstLogitRow * vocabSize, drafts, drafts.length,
                    r.params, r.history, r.suppressedEarly, r.random);
            r.draftTokens += drafts.length;
            r.acceptedTokens += v.accepted();
            if (r.draftLength != null) {
                r.draftLength.record(drafts.length, v.accepted());
            }
            stats.onVerification(drafts.length, v.accepted());
            if (trace != null) {
                trace.onVerified(r.id, drafts, v.accepted());
            }
            RequestStatus status = null;
            for (Sampler.Sample s : v.samples()) {
                emitted++;
                status = append(r, s);
                if (status != null) {
                    break;
                }
            }
            return new SpecOutcome(status, drafts.length + 1 - emitted);
        } catch (RuntimeException e) {
            String what = e instanceof SamplingException ? "sampling" : "output processing";
            LOG.warn("Request {} failed in {} of speculative verification at output token {} on {}; the engine goes on",
                    r.id, what, r.numGenerated(), engineName, e);
            r.error = new GenerationException(GenerationException.Code.ENGINE_ERROR, r.id, what + " failed at output"
                    + " token " + r.numGenerated() + ": " + e.getMessage(), e);
            return new SpecOutcome(RequestStatus.FINISHED_ERROR, drafts.length + 1 - Math.max(1, emitted));
        }
    }

    /**
     * What a verification did to a request.
     *
     * @param status the final status if a token finished the request, else null
     * @param numRejected scheduled positions past the request's new last computed one: rejected drafts and
     *     accepted ones dropped after a stop
     */
    record SpecOutcome(RequestStatus status, int numRejected) {}

    /** Sees every verification (tests compare accepted counts with a reference). */
    interface VerificationTrace {
        void onVerified(String requestId, int[] drafts, int accepted);
    }

    /** Package-private hook for tests; null when unused. */
    volatile VerificationTrace trace;

    private RequestStatus appendToken(RequestState r, FloatBuffer logits, int logitRow) {
        SamplingParams p = r.params;
        Collection<Integer> suppressed = r.numGenerated() < p.minTokens() ? r.suppressedEarly : List.of();
        double uniform = p.isGreedy() ? 0 : r.random.nextDouble();
        Sampler.Sample s = sampler.sample(logits, logitRow * vocabSize, p, r.history, suppressed, uniform);
        return append(r, s);
    }

    /** Appends one sampled token and applies the stop rules; the final status, or null while it goes on. */
    private RequestStatus append(RequestState r, Sampler.Sample s) {
        SamplingParams p = r.params;
        int id = s.tokenId();
        long now = System.nanoTime();
        if (r.firstTokenNanos == 0) {
            r.firstTokenNanos = now;
        }
        r.tokens[r.numTokens++] = id;
        r.history.addGenerated(id);
        stats.onOutputToken();
        if (p.logprobs() > 0) {
            r.logprobs.add(new GenerationResult.TokenLogprob(id, s.logprob(), s.topIds(), s.topLogprobs()));
        }
        FinishReason reason = null;
        boolean stopToken = (!p.ignoreEos() && eosIds.contains(id)) || p.stopTokenIds().contains(id);
        if (stopToken) {
            reason = FinishReason.STOP;
        } else if (r.detokenizer != null) {
            int before = r.text.length();
            r.text.append(r.detokenizer.push(id));
            if (!p.stop().isEmpty() && matchStop(r, before)) {
                reason = FinishReason.STOP;
            }
        }
        if (reason == null && (r.numGenerated() >= p.maxTokens() || r.numTokens >= maxModelLen)) {
            reason = FinishReason.LENGTH;
            if (r.detokenizer != null) {
                r.text.append(r.detokenizer.flush());
            }
        }
        if (reason == null) {
            stream(r, id, streamableEnd(r));
            return null;
        }
        stream(r, id, r.text.length());
        return RequestStatus.finishedBy(reason);
    }

    /** Looks for a stop string that may have appeared with the text after {@code before}; cuts the text there. */
    private static boolean matchStop(RequestState r, int before) {
        int best = -1;
        for (String stop : r.params.stop()) {
            int from = Math.max(0, before - stop.length() + 1);
            int at = r.text.indexOf(stop, from);
            if (at >= 0 && (best < 0 || at < best)) {
                best = at;
            }
        }
        if (best < 0) {
            return false;
        }
        r.text.setLength(best);
        r.streamedChars = Math.min(r.streamedChars, best);
        return true;
    }

    /** End of the text that can be streamed: short of the longest stop string, so a stop is never half-sent. */
    private static int streamableEnd(RequestState r) {
        int hold = 0;
        for (String stop : r.params.stop()) {
            hold = Math.max(hold, stop.length() - 1);
        }
        int end = Math.max(r.streamedChars, r.text.length() - hold);
        if (end > r.streamedChars && end < r.text.length() && Character.isHighSurrogate(r.text.charAt(end - 1))) {
            end--;
        }
        return end;
    }

    private static void stream(RequestState r, int id, int end) {
        if (r.listener == TokenListener.NONE) {
            r.streamedChars = end;
            return;
        }
        String delta = end > r.streamedChars ? r.text.substring(r.streamedChars, end) : "";
        r.streamedChars = Math.max(r.streamedChars, end);
        try {
            r.listener.onToken(id, delta);
        } catch (RuntimeException e) {
            LOG.warn("Token listener of request {} failed; the request goes on", r.id, e);
        }
    }

    /**
     * Hands a finished request its outcome: the result for a stop, length or cancel (counted in the
     * latency means), or its {@link RequestState#error}. Called after the scheduler freed its blocks.
     */
    void finish(RequestState r) {
        if (r.status == RequestStatus.FINISHED_ERROR) {
            stats.onFailed();
            r.future.completeExceptionally(r.error);
            return;
        }
        stats.onFinished(r, System.nanoTime());
        complete(r);
    }

    /** Completes the future of a request with its result (its status must be final and not an error). */
    static void complete(RequestState r) {
        long end = System.nanoTime();
        int generated = r.numGenerated();
        double queueMs = r.firstScheduledNanos == 0 ? (end - r.arrivalNanos) / 1e6 : (r.firstScheduledNanos - r.arrivalNanos) / 1e6;
        double ttft = r.firstTokenNanos == 0 ? 0 : (r.firstTokenNanos - r.arrivalNanos) / 1e6;
        double tpot = generated > 1 ? (end - r.firstTokenNanos) / 1e6 / (generated - 1) : 0;
        GenerationResult result = new GenerationResult(r.id, r.text.toString(),
                java.util.Arrays.copyOfRange(r.tokens, r.numPromptTokens, r.numTokens), r.status.finishReason(),
                new GenerationResult.Usage(r.numPromptTokens, generated, r.cachedPromptTokens, r.peakBytes,
                        r.peakBlocks, r.preemptions, r.draftTokens, r.acceptedTokens),
                new GenerationResult.Timings(queueMs, ttft, tpot, (end - r.arrivalNanos) / 1e6), r.logprobs);
        r.future.complete(result);
    }

    /** Fails a request that did not finish (the engine failed or closed); not counted as finished. */
    static void fail(RequestState r, GenerationException e) {
        r.status = RequestStatus.FINISHED_ERROR;
        r.error = e;
        r.future.completeExceptionally(e);
    }
}
