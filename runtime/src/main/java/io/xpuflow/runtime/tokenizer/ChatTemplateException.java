package io.xpuflow.runtime.tokenizer;

/**
 * A chat template that is missing, does not parse, fails while rendering, or rejects the conversation through
 * {@code raise_exception} (then the message is the template's own, e.g. "Conversation roles must alternate
 * user/assistant/user/assistant/...").
 */
public final class ChatTemplateException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final boolean raisedByTemplate;
    private final boolean missing;

    public ChatTemplateException(String message) {
        this(message, false, null);
    }

    public ChatTemplateException(String message, boolean raisedByTemplate, Throwable cause) {
        this(message, raisedByTemplate, false, cause);
    }

    private ChatTemplateException(String message, boolean raisedByTemplate, boolean missing, Throwable cause) {
        super(message, cause);
        this.raisedByTemplate = raisedByTemplate;
        this.missing = missing;
    }

    /** The model has no chat template at all (a plain completion model), rather than one that fails. */
    static ChatTemplateException missing(String message) {
        return new ChatTemplateException(message, false, true, null);
    }

    /** Whether the model simply has no chat template; otherwise it has one that was refused or failed. */
    public boolean isMissing() {
        return missing;
    }

    /** Whether the template itself called {@code raise_exception}: the conversation, not the template, is at fault. */
    public boolean raisedByTemplate() {
        return raisedByTemplate;
    }
}
