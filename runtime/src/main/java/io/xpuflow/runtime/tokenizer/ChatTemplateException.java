package io.xpuflow.runtime.tokenizer;

/**
 * A chat template that is missing, does not parse, fails while rendering, or rejects the conversation through
 * {@code raise_exception} (then the message is the template's own, e.g. "Conversation roles must alternate
 * user/assistant/user/assistant/...").
 */
public final class ChatTemplateException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final boolean raisedByTemplate;

    public ChatTemplateException(String message) {
        this(message, false, null);
    }

    public ChatTemplateException(String message, boolean raisedByTemplate, Throwable cause) {
        super(message, cause);
        this.raisedByTemplate = raisedByTemplate;
    }

    /** Whether the template itself called {@code raise_exception}: the conversation, not the template, is at fault. */
    public boolean raisedByTemplate() {
        return raisedByTemplate;
    }
}
