package io.xpuflow.runtime.engine;

import io.xpuflow.runtime.config.ModelConfig;
import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.tokenizer.ChatTemplate;
import io.xpuflow.runtime.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Turns a submitted {@link GenerationRequest} into what the core needs (vLLM's input processor):
 * prompt token ids (given, tokenized, or rendered through the chat template), checked against the
 * vocabulary and the max model length, and the tokens suppressed before {@code min_tokens}. Runs on the
 * submitting thread, so a request that cannot be served is refused before it is queued.
 *
 * <p>Stateless after construction; thread-safe as far as the tokenizer and template are.
 */
final class InputProcessor {
    private final ModelConfig config;
    private final Tokenizer tokenizer;       // null: token ids only
    private final ChatTemplate chatTemplate; // null: no chat requests
    private final Set<Integer> eosIds;
    private final int maxModelLen;
    private final Path modelDir;

    /**
     * A request ready to queue.
     *
     * @param promptTokenIds the prompt, never empty, every id in the vocabulary
     * @param capacity tokens the request may reach: prompt plus max tokens, at most the max model length
     * @param suppressedEarly end and stop token ids suppressed until {@code min_tokens} are generated
     */
    record Prepared(int[] promptTokenIds, int capacity, Collection<Integer> suppressedEarly) {}

    InputProcessor(ModelConfig config, Tokenizer tokenizer, ChatTemplate chatTemplate, Set<Integer> eosIds,
                   int maxModelLen, Path modelDir) {
        this.config = config;
        this.tokenizer = tokenizer;
        this.chatTemplate = chatTemplate;
        this.eosIds = Set.copyOf(eosIds);
        this.maxModelLen = maxModelLen;
        this.modelDir = modelDir;
    }

    /**
     * @throws GenerationException {@code INVALID_PARAM} or {@code PROMPT_TOO_LONG} for a request that cannot
     *     be served, {@code ENGINE_ERROR} when the tokenizer fails on it
     */
    Prepared process(GenerationRequest request) {
        int[] prompt;
        try {
            prompt = promptTokens(request);
        } catch (GenerationException e) {
            throw e;
        } catch (RuntimeException e) {
            // the tokenizer failing on a prompt is a fault of ours, not of the request: never INVALID_PARAM
            throw new GenerationException(GenerationException.Code.ENGINE_ERROR, request.id(),
                    "tokenizing the prompt failed in the engine for " + modelDir + ": " + e, e);
        }
        SamplingParams p = request.sampling();
        if (prompt.length == 0) {
            throw new GenerationException(GenerationException.Code.INVALID_PARAM, request.id(), "the prompt is empty");
        }
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= config.vocabSize()) {
                throw new GenerationException(GenerationException.Code.INVALID_PARAM, request.id(), "prompt token "
                        + prompt[i] + " at position " + i + " is outside the vocabulary of " + config.vocabSize());
            }
        }
        for (int id : p.stopTokenIds()) {
            if (id < 0 || id >= config.vocabSize()) {
                throw new GenerationException(GenerationException.Code.INVALID_PARAM, request.id(),
                        "'stop_token_ids' holds " + id + ", outside the vocabulary of " + config.vocabSize());
            }
        }
        if (prompt.length >= maxModelLen) {
            throw new GenerationException(GenerationException.Code.PROMPT_TOO_LONG, request.id(), "prompt of "
                    + prompt.length + " tokens leaves no room to generate in the max model length of " + maxModelLen);
        }
        Collection<Integer> suppressed = List.of();
        if (p.minTokens() > 0) {
            Set<Integer> s = new LinkedHashSet<>(p.stopTokenIds());
            if (!p.ignoreEos()) {
                s.addAll(eosIds);
            }
            suppressed = List.copyOf(s);
            checkSomethingToSample(request.id(), p, s);
        }
        return new Prepared(prompt, (int) Math.min(maxModelLen, (long) prompt.length + p.maxTokens()), suppressed);
    }

    /**
     * Before {@code min_tokens} are generated, end and stop tokens are suppressed; when they are the whole
     * vocabulary no first token exists, which the sampler could only report at the first step. Refused
     * here instead, naming the fields, so it is the caller's INVALID_PARAM and never an engine error.
     */
    private void checkSomethingToSample(String id, SamplingParams p, Set<Integer> suppressed) {
        int inVocab = 0;
        for (int t : suppressed) {
            if (t >= 0 && t < config.vocabSize()) {
                inVocab++;
            }
        }
        if (inVocab >= config.vocabSize()) {
            throw new GenerationException(GenerationException.Code.INVALID_PARAM, id, "'min_tokens' is "
                    + p.minTokens() + " but 'stop_token_ids'" + (p.ignoreEos() ? "" : " with the end-of-sequence ids")
                    + " cover all " + config.vocabSize() + " tokens of the vocabulary: no token may be generated first");
        }
    }

    private int[] promptTokens(GenerationRequest request) {
        if (request.promptTokenIdsUnsafe() != null) {
            return request.promptTokenIdsUnsafe();
        }
        if (tokenizer == null) {
            throw new GenerationException(GenerationException.Code.INVALID_PARAM, request.id(), "model "
                    + modelDir + " has no tokenizer.json: send prompt token ids instead of text");
        }
        if (request.prompt() != null) {
            return tokenizer.encode(request.prompt(), true);
        }
        if (chatTemplate == null) {
            throw new GenerationException(GenerationException.Code.INVALID_PARAM, request.id(), "model "
                    + modelDir + " has no chat template: send a plain prompt instead of messages");
        }
        String text;
        try {
            text = chatTemplate.render(request.messages(), true, Map.of());
        } catch (RuntimeException e) {
            throw new GenerationException(GenerationException.Code.INVALID_PARAM, request.id(),
                    "chat template rejected the messages: " + e.getMessage(), e);
        }
        return tokenizer.encode(text, false);
    }
}
