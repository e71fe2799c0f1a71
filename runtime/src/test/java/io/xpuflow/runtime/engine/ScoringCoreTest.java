package io.xpuflow.runtime.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.xpuflow.runtime.model.LoadOptions;
import io.xpuflow.runtime.model.LoadedModel;
import io.xpuflow.runtime.testutil.Fixtures;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The core in scoring mode on the smallest model: how prompts share steps, and recovery from a failed call. */
class ScoringCoreTest {
    @Test
    void promptsShareStepsInOrderUnderTheTokenBudget() {
        try (LoadedModel model = LoadedModel.load(Fixtures.model("stories260k"), new LoadOptions(1, 16, 4));
             ScoringCore core = ScoringCore.create(model.deviceModel(), model.kvLayout(), 16, 64, 4, 16, 0, false, false)) {
            List<List<ScoringCore.Chunk>> steps = new ArrayList<>();
            core.score(List.of(new int[20], new int[5], new int[3]), ScoringCore.StepHook.NONE,
                    (chunks, batch) -> steps.add(List.copyOf(chunks)));
            // 28 tokens, 16 per step: prompt 0 takes the first step, its tail and the others the second
            assertThat(steps).containsExactly(
                    List.of(new ScoringCore.Chunk(0, 0, 16, 0, 0)),
                    List.of(new ScoringCore.Chunk(0, 16, 4, 0, 0), new ScoringCore.Chunk(1, 0, 5, 4, 4),
                            new ScoringCore.Chunk(2, 0, 3, 9, 9)));
        }
    }

    @Test
    void aFailedCallGivesEveryBlockBackAndTheNextOneWorks() {
        try (LoadedModel model = LoadedModel.load(Fixtures.model("stories260k"), new LoadOptions(1, 16, 2));
             ScoringCore core = ScoringCore.create(model.deviceModel(), model.kvLayout(), 16, 32, 2, 16, 0, false, false)) {
            assertThatThrownBy(() -> core.score(List.of(new int[30], new int[30]), ScoringCore.StepHook.NONE,
                    (chunks, batch) -> {
                        throw new IllegalStateException("reader failed");
                    })).hasMessage("reader failed");
            // both sequences at full length again: only possible if the failed call freed its blocks
            int[] steps = {0};
            core.score(List.of(new int[32], new int[32]), ScoringCore.StepHook.NONE, (chunks, batch) -> steps[0]++);
            assertThat(steps[0]).isEqualTo(4);
            assertThat(core.generateGreedy(new int[] {1, 2}, 3, id -> false)).hasSize(3);
            assertThat(core.generateGreedy(new int[] {1, 2}, 0, id -> false)).isEmpty();
        }
    }
}
