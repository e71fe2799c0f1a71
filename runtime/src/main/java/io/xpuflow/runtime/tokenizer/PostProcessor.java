package io.xpuflow.runtime.tokenizer;

import java.util.List;

/**
 * The special tokens that {@code encode(text, true)} puts around a single text: what the {@code post_processor}
 * of a {@code tokenizer.json} adds (Hugging Face's TemplateProcessing {@code single} template, or BERT/RoBERTa's
 * CLS ... SEP). Pair templates are for sentence-pair models and have no use in generation.
 *
 * @param prefix ids before the text (typically BOS)
 * @param suffix ids after the text
 */
record PostProcessor(int[] prefix, int[] suffix) {
    static final PostProcessor NONE = new PostProcessor(new int[0], new int[0]);

    static PostProcessor parse(JsonField json) {
        if (json.isAbsent()) {
            return NONE;
        }
        String type = json.type();
        switch (type) {
            case "ByteLevel":
                return NONE; // only adjusts offsets, which this engine does not report
            case "TemplateProcessing":
                return template(json);
            case "BertProcessing":
            case "RobertaProcessing":
                return new PostProcessor(new int[] {pairId(json.get("cls"))}, new int[] {pairId(json.get("sep"))});
            case "Sequence": {
                PostProcessor out = NONE;
                for (JsonField p : json.get("processors").elements()) {
                    PostProcessor next = parse(p);
                    if (next.prefix.length > 0 || next.suffix.length > 0) {
                        if (out != NONE) {
                            throw p.error("is a second post-processor that adds special tokens; only one is supported");
                        }
                        out = next;
                    }
                }
                return out;
            }
            default:
                throw json.get("type").error("post_processor type '" + type + "' is not supported (supported: "
                        + "TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, Sequence)");
        }
    }

    /** {@code ["[CLS]", 101]} */
    private static int pairId(JsonField json) {
        List<JsonField> pair = json.elements();
        if (pair.size() != 2) {
            throw json.error("must be [token, id], was " + json.brief());
        }
        return pair.get(1).index();
    }

    private static PostProcessor template(JsonField json) {
        JsonField specials = json.get("special_tokens");
        IntList prefix = new IntList(2);
        IntList suffix = new IntList(2);
        boolean seenSequence = false;
        for (JsonField piece : json.get("single").elements()) {
            JsonField special = piece.get("SpecialToken");
            JsonField sequence = piece.get("Sequence");
            if (!sequence.isAbsent()) {
                if (seenSequence) {
                    throw sequence.error("appears twice in the single template");
                }
                seenSequence = true;
            } else if (!special.isAbsent()) {
                String name = special.get("id").text();
                JsonField entry = specials.get(name);
                if (entry.isAbsent()) {
                    throw special.get("id").error("names '" + name + "', which post_processor.special_tokens lacks");
                }
                for (JsonField id : entry.get("ids").elements()) {
                    (seenSequence ? suffix : prefix).add(id.index());
                }
            } else {
                throw piece.error("must be {\"SpecialToken\": ...} or {\"Sequence\": ...}, was " + piece.brief());
            }
        }
        if (!seenSequence) {
            throw json.get("single").error("has no {\"Sequence\": {\"id\": \"A\"}} for the text");
        }
        return new PostProcessor(prefix.toArray(), suffix.toArray());
    }
}
