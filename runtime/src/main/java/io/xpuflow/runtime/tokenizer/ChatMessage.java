package io.xpuflow.runtime.tokenizer;

import java.util.Objects;

/**
 * One turn of a conversation, as chat templates receive it ({@code {"role": ..., "content": ...}}).
 *
 * @param role {@code system}, {@code user}, {@code assistant} or {@code tool} (templates decide what they accept)
 * @param content the text of the turn; an empty string for a turn without text
 */
public record ChatMessage(String role, String content) {
    public ChatMessage {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content (use \"\" for a turn without text)");
        if (role.isBlank()) {
            throw new IllegalArgumentException("role must not be blank");
        }
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }
}
