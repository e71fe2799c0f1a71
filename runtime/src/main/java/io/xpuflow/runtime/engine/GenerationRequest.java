package io.xpuflow.runtime.engine;

import io.xpuflow.runtime.sample.SamplingParams;
import io.xpuflow.runtime.tokenizer.ChatMessage;
import java.util.List;
import java.util.Objects;

/**
 * One generation to run: an id, exactly one form of prompt, and how to sample.
 *
 * <ul>
 *   <li>{@code prompt}: text, tokenized with the model's tokenizer (special tokens such as BOS added
 *       as the tokenizer's post-processor says);</li>
 *   <li>{@code promptTokenIds}: token ids used as they are;</li>
 *   <li>{@code messages}: OpenAI-style chat messages rendered with the model's chat template
 *       ({@code add_generation_prompt} on), then tokenized without adding special tokens.</li>
 * </ul>
 *
 * @param id caller's id, echoed in results and errors; also seeds sampling when {@code sampling.seed()} is null
 */
public record GenerationRequest(String id, String prompt, int[] promptTokenIds, List<ChatMessage> messages,
                                SamplingParams sampling) {

    public GenerationRequest {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(sampling, "sampling");
        int forms = (prompt != null ? 1 : 0) + (promptTokenIds != null ? 1 : 0) + (messages != null ? 1 : 0);
        if (forms != 1) {
            throw new IllegalArgumentException("request '" + id + "' needs exactly one of prompt, prompt token ids or"
                    + " messages, got " + forms);
        }
        promptTokenIds = promptTokenIds == null ? null : promptTokenIds.clone();
        messages = messages == null ? null : List.copyOf(messages);
    }

    public static GenerationRequest ofText(String id, String prompt, SamplingParams sampling) {
        return new GenerationRequest(id, prompt, null, null, sampling);
    }

    public static GenerationRequest ofTokens(String id, int[] promptTokenIds, SamplingParams sampling) {
        return new GenerationRequest(id, null, promptTokenIds, null, sampling);
    }

    public static GenerationRequest ofMessages(String id, List<ChatMessage> messages, SamplingParams sampling) {
        return new GenerationRequest(id, null, null, messages, sampling);
    }

    @Override
    public int[] promptTokenIds() {
        return promptTokenIds == null ? null : promptTokenIds.clone();
    }

    int[] promptTokenIdsUnsafe() {
        return promptTokenIds;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GenerationRequest r && id.equals(r.id) && Objects.equals(prompt, r.prompt)
                && java.util.Arrays.equals(promptTokenIds, r.promptTokenIds) && Objects.equals(messages, r.messages)
                && sampling.equals(r.sampling);
    }

    @Override
    public int hashCode() {
        return Objects.hash(id, prompt, java.util.Arrays.hashCode(promptTokenIds), messages, sampling);
    }

    @Override
    public String toString() {
        String form = prompt != null ? "prompt of " + prompt.length() + " chars"
                : promptTokenIds != null ? promptTokenIds.length + " prompt tokens" : messages.size() + " messages";
        return "GenerationRequest[" + id + ", " + form + ", " + sampling + "]";
    }
}
