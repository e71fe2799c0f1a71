package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.xpuflow.runtime.model.KvLayout;
import io.xpuflow.runtime.sample.SamplingParams;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Sampling, stop rules, streaming and results of one request, from hand-made logit rows: no model. */
class OutputProcessorTest {
    private static final int VOCAB = 8;
    private static final int EOS = 2;

    private final EngineStats stats = new EngineStats();
    private final OutputProcessor output = new OutputProcessor(VOCAB, Set.of(EOS), 32, stats, "test");
    private final KvCacheManager kv = new KvCacheManager(new KvLayout(new int[] {0}, new int[] {0}), 4,
            new int[] {8}, new long[] {1}, 8, false);

    private RequestState request(SamplingParams p, TokenListener listener) {
        return new RequestState("q", 0, new int[] {1, 5}, 2 + p.maxTokens(), p, listener, List.of(), null, kv, null);
    }

    /** Row 0 peaks at {@code token}, row 1 holds a NaN. */
    private static FloatBuffer logits(int token) {
        float[] rows = new float[2 * VOCAB];
        rows[token] = 10;
        rows[VOCAB + 3] = Float.NaN;
        return FloatBuffer.wrap(rows);
    }

    @Test
    void greedyTokensStreamUntilMaxTokens() {
        List<Integer> streamed = new ArrayList<>();
        RequestState r = request(SamplingParams.builder().temperature(0).maxTokens(2).build(),
                (id, text) -> streamed.add(id));
        assertThat(output.process(r, logits(6), 0)).isNull();
        assertThat(output.process(r, logits(4), 0)).isEqualTo(RequestStatus.FINISHED_LENGTH);
        assertThat(streamed).containsExactly(6, 4);

        r.status = RequestStatus.FINISHED_LENGTH;
        output.finish(r);
        GenerationResult result = r.future.join();
        assertThat(result.tokenIds()).containsExactly(6, 4);
        assertThat(result.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(stats.snapshot(0, 0, kv).outputTokens()).isEqualTo(2);
        assertThat(stats.finished()).isEqualTo(1);
    }

    @Test
    void endOfSequenceStopsUnlessIgnoredAndStopTokenIdsAlwaysStop() {
        RequestState eos = request(SamplingParams.builder().temperature(0).maxTokens(5).build(), TokenListener.NONE);
        assertThat(output.process(eos, logits(EOS), 0)).isEqualTo(RequestStatus.FINISHED_STOPPED);

        RequestState ignoring = request(SamplingParams.builder().temperature(0).maxTokens(5).ignoreEos(true)
                .stopTokenIds(Set.of(7)).build(), TokenListener.NONE);
        assertThat(output.process(ignoring, logits(EOS), 0)).isNull();
        assertThat(output.process(ignoring, logits(7), 0)).isEqualTo(RequestStatus.FINISHED_STOPPED);
        assertThat(ignoring.numGenerated()).isEqualTo(2);
    }

    @Test
    void aFaultySampleFailsTheRequestAloneAndAFaultyListenerDoesNot() {
        RequestState broken = request(SamplingParams.builder().temperature(0).maxTokens(5).build(), TokenListener.NONE);
        assertThat(output.process(broken, logits(6), 1)).isEqualTo(RequestStatus.FINISHED_ERROR);
        assertThat(broken.error).hasMessageContainingAll("q", "sampling", "output token 0", "non-finite");
        broken.status = RequestStatus.FINISHED_ERROR;
        output.finish(broken);
        assertThat(broken.future).isCompletedExceptionally();

        RequestState loud = request(SamplingParams.builder().temperature(0).maxTokens(5).build(), (id, text) -> {
            throw new IllegalStateException("listener bug");
        });
        assertThat(output.process(loud, logits(6), 0)).isNull();
        assertThat(loud.numGenerated()).isEqualTo(1);
    }
}
