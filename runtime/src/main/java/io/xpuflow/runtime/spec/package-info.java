/**
 * Speculative decoding parts, free of engine state so each is tested on its own.
 *
 * <p>How a step of one speculating request uses them (the engine's wiring is in
 * {@code io.xpuflow.runtime.engine}: {@code Scheduler}, {@code OutputProcessor}, {@code NgramDrafter},
 * {@code MtpDrafter}):
 * <ol>
 *   <li>{@link io.xpuflow.runtime.spec.AdaptiveDraftLength#nextDraftLength()} gives k for this step
 *   (0: a plain step);</li>
 *   <li>the drafts come from {@link io.xpuflow.runtime.spec.NgramProposer#propose} over the request's
 *   prompt and output tokens, or from the model's MTP head ({@link io.xpuflow.runtime.spec.SpeculativeConfig}
 *   says which);</li>
 *   <li>the target model scores the last token plus the drafts in one pass, giving k+1 logit rows;</li>
 *   <li>{@link io.xpuflow.runtime.spec.RejectionSampler#verify} returns the accepted count and the
 *   emitted tokens; the engine appends them (cut at a stop token or max_tokens) to the request, its
 *   history and its KV (rejected drafts' KV slots are dropped);</li>
 *   <li>{@code AdaptiveDraftLength.record} and {@link io.xpuflow.runtime.spec.SpecDecodeStats#record} take
 *   the proposed and accepted counts, which also feed
 *   {@link io.xpuflow.runtime.engine.GenerationResult.Usage#draftTokens()} and
 *   {@link io.xpuflow.runtime.engine.GenerationResult.Usage#acceptedTokens()}.</li>
 * </ol>
 */
package io.xpuflow.runtime.spec;
