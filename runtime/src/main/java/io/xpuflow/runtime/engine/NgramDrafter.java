package io.xpuflow.runtime.engine;

import io.xpuflow.runtime.spec.NgramProposer;
import java.util.List;

/** Prompt-lookup drafts: {@link NgramProposer} over each request's prompt and output tokens. */
final class NgramDrafter extends Drafter {
    private final NgramProposer proposer;

    NgramDrafter(int minN, int maxN) {
        this.proposer = new NgramProposer(minN, maxN);
    }

    @Override
    void propose(List<RequestState> running) {
        for (int i = 0; i < running.size(); i++) {
            RequestState r = running.get(i);
            int k = draftBudget(r);
            if (k > 0) {
                r.numSpecTokens = proposer.propose(r.tokens, r.numTokens, k, r.specTokens);
            }
        }
    }
}
