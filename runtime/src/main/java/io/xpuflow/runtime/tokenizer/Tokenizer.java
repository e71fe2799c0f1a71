package io.xpuflow.runtime.tokenizer;

import io.xpuflow.runtime.tokenizer.AddedVocabulary.AddedToken;
import io.xpuflow.runtime.tokenizer.AddedVocabulary.Segment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Hugging Face tokenizer read from a model directory: text to token ids and back.
 *
 * <p>It implements the {@code tokenizer.json} pipeline of the Hugging Face {@code tokenizers} library for
 * BPE models: added tokens are cut out of the text first, the rest is normalized, pre-tokenized into words
 * and encoded by BPE; decoding runs the decoder chain. Both families of LLM tokenizers are covered:
 * byte-level BPE (GPT-2, Qwen2/3, MiMo, Llama 3) and SentencePiece-style BPE with byte fallback (Llama 2,
 * TinyStories). A component type it does not implement is refused when loading, with the type and field
 * named, rather than encoding differently from the reference.
 *
 * <p>Instances are immutable and safe to share between threads; a {@link Stream} is not.
 */
public final class Tokenizer {
    private static final Logger LOG = LoggerFactory.getLogger(Tokenizer.class);

    private final Path file;
    private final Normalizer normalizer;
    private final PreTokenizer preTokenizer;
    private final BpeModel model;
    private final AddedVocabulary added;
    private final Decoder decoder;
    private final PostProcessor specialTokens;
    private final Map<Integer, String> addedById;
    private final Map<String, Integer> addedByContent;
    private final Set<Integer> specialIds;
    private final int vocabSize;
    private final Integer bosId;
    private final List<Integer> eosIds;

    private Tokenizer(Path file, Normalizer normalizer, PreTokenizer preTokenizer, BpeModel model,
                      AddedVocabulary added, Decoder decoder, PostProcessor specialTokens, Integer bosId,
                      List<Integer> eosIds) {
        this.file = file;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.model = model;
        this.added = added;
        this.decoder = decoder;
        this.specialTokens = specialTokens;
        this.bosId = bosId;
        this.eosIds = List.copyOf(eosIds);
        Map<Integer, String> byId = new HashMap<>();
        Map<String, Integer> byContent = new HashMap<>();
        Set<Integer> special = new TreeSet<>();
        int size = model.size();
        for (AddedToken t : added.tokens()) {
            byId.putIfAbsent(t.id(), t.content());
            byContent.putIfAbsent(t.content(), t.id());
            if (t.special()) {
                special.add(t.id());
            }
            size = Math.max(size, t.id() + 1);
        }
        this.addedById = byId;
        this.addedByContent = byContent;
        this.specialIds = Collections.unmodifiableSet(special);
        this.vocabSize = size;
    }

    /**
     * Loads the tokenizer of a model directory.
     *
     * <ul>
     *   <li>{@code tokenizer.json} (required): the whole pipeline.
     *   <li>{@code tokenizer_config.json} (optional): {@code bos_token}, {@code eos_token}, and
     *       {@code add_bos_token}/{@code add_eos_token}, which, where present, decide the special tokens of
     *       {@code encode(text, true)} in place of the post-processor (as the Llama tokenizers of
     *       {@code transformers} do).
     *   <li>{@code special_tokens_map.json} (optional): BOS/EOS when tokenizer_config.json does not name them.
     *   <li>{@code generation_config.json} (optional): its {@code eos_token_id} (one id or a list) adds to
     *       {@link #eosIds()}.
     * </ul>
     *
     * @throws TokenizerException naming the file and field that is missing, malformed or unsupported
     */
    public static Tokenizer load(Path modelDir) {
        long started = System.nanoTime();
        Path file = modelDir.resolve("tokenizer.json");
        JsonField json = JsonField.read(file);
        Normalizer normalizer = Normalizer.parse(json.get("normalizer"));
        PreTokenizer preTokenizer = PreTokenizer.parse(json.get("pre_tokenizer"));
        BpeModel model = BpeModel.parse(json.get("model"));
        AddedVocabulary added = AddedVocabulary.parse(json.get("added_tokens"), normalizer);
        Decoder decoder = Decoder.parse(json.get("decoder"));
        PostProcessor post = PostProcessor.parse(json.get("post_processor"));

        JsonField config = JsonField.readOptional(modelDir.resolve("tokenizer_config.json"));
        JsonField specialMap = JsonField.readOptional(modelDir.resolve("special_tokens_map.json"));
        Integer bos = namedTokenId(file, added, model, config, specialMap, "bos_token");
        Integer eos = namedTokenId(file, added, model, config, specialMap, "eos_token");

        LinkedHashSet<Integer> eosIds = new LinkedHashSet<>();
        if (eos != null) {
            eosIds.add(eos);
        }
        JsonField generation = JsonField.readOptional(modelDir.resolve("generation_config.json"));
        if (generation != null) {
            JsonField ids = generation.get("eos_token_id");
            if (!ids.isAbsent()) {
                for (JsonField id : ids.node().isArray() ? ids.elements() : List.of(ids)) {
                    eosIds.add(id.index());
                }
            }
        }

        PostProcessor specials = post;
        if (config != null) {
            JsonField addBos = config.get("add_bos_token");
            JsonField addEos = config.get("add_eos_token");
            int[] prefix = post.prefix();
            int[] suffix = post.suffix();
            if (!addBos.isAbsent()) {
                prefix = addBos.bool(false) ? new int[] {require(bos, addBos, "bos_token")} : new int[0];
            }
            if (!addEos.isAbsent()) {
                suffix = addEos.bool(false) ? new int[] {require(eos, addEos, "eos_token")} : new int[0];
            }
            if (!Arrays.equals(prefix, post.prefix()) || !Arrays.equals(suffix, post.suffix())) {
                LOG.debug("{}: add_bos_token/add_eos_token override the post-processor: {} ... {} instead of {} ... {}",
                        config.file(), prefix, suffix, post.prefix(), post.suffix());
            }
            specials = new PostProcessor(prefix, suffix);
        }
        Tokenizer t = new Tokenizer(file, normalizer, preTokenizer, model, added, decoder, specials, bos,
                new ArrayList<>(eosIds));
        LOG.info("Loaded tokenizer {}: {} ids ({} added, {} special), BOS {}, EOS {}, {} ms", file, t.vocabSize,
                added.tokens().size(), t.specialIds.size(), bos, t.eosIds, (System.nanoTime() - started) / 1_000_000);
        return t;
    }

    private static int require(Integer id, JsonField flag, String tokenField) {
        if (id == null) {
            throw flag.error("is true but no " + tokenField + " is configured");
        }
        return id;
    }

    /** The id of {@code bos_token}/{@code eos_token} (a string, or an object with a {@code content}). */
    private static Integer namedTokenId(Path file, AddedVocabulary added, BpeModel model, JsonField config,
                                        JsonField specialMap, String field) {
        JsonField f = config == null ? null : config.get(field);
        if ((f == null || f.isAbsent()) && specialMap != null) {
            f = specialMap.get(field);
        }
        if (f == null || f.isAbsent()) {
            return null;
        }
        String content = f.node().isObject() ? f.get("content").text() : f.text();
        for (AddedToken t : added.tokens()) {
            if (t.content().equals(content)) {
                return t.id();
            }
        }
        Integer id = model.id(content);
        if (id == null) {
            throw f.error("is '" + content + "', which is not in the vocabulary of " + file);
        }
        return id;
    }

    /**
     * Encodes text to token ids.
     *
     * @param addSpecialTokens add what the tokenizer puts around a text (typically BOS for Llama, nothing for
     *     Qwen); special tokens written in the text itself are recognised either way
     */
    public int[] encode(String text, boolean addSpecialTokens) {
        Objects.requireNonNull(text, "text");
        // UTF-8 (and so byte-level BPE) cannot represent an unpaired surrogate; Java strings can hold one
        String clean = Utf8.replaceLoneSurrogates(text);
        IntList out = new IntList(clean.length() / 3 + 8);
        if (addSpecialTokens) {
            out.addAll(specialTokens.prefix());
        }
        for (Segment segment : added.splitRaw(clean)) {
            if (segment.isToken()) {
                out.add(segment.tokenId());
            } else {
                encodeText(segment.text(), segment.start() == 0, out);
            }
        }
        if (addSpecialTokens) {
            out.addAll(specialTokens.suffix());
        }
        return out.toArray();
    }

    private void encodeText(String text, boolean atStart, IntList out) {
        if (text.isEmpty()) {
            return;
        }
        String normalized = normalizer == null ? text : normalizer.normalize(text);
        if (!added.hasNormalizedTokens()) {
            encodeWords(normalized, atStart, out);
            return;
        }
        for (Segment segment : added.splitNormalized(normalized)) {
            if (segment.isToken()) {
                out.add(segment.tokenId());
            } else {
                encodeWords(segment.text(), atStart && segment.start() == 0, out);
            }
        }
    }

    private void encodeWords(String text, boolean atStart, IntList out) {
        if (text.isEmpty()) {
            return;
        }
        List<String> words = preTokenizer == null ? List.of(text) : preTokenizer.apply(List.of(text), atStart);
        for (String word : words) {
            model.encodeWord(word, out);
        }
    }

    /**
     * Decodes token ids to text. Ids that name no token are skipped (as Hugging Face does: a model's
     * embedding table is often padded beyond the tokenizer's vocabulary).
     *
     * @param skipSpecialTokens leave out the tokens marked special in {@code added_tokens}
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        return decode(ids, 0, ids.length, skipSpecialTokens, new Decoder.State(false));
    }

    private String decode(int[] ids, int from, int to, boolean skipSpecialTokens, Decoder.State state) {
        List<String> tokens = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) {
            int id = ids[i];
            if (skipSpecialTokens && specialIds.contains(id)) {
                continue;
            }
            String t = addedById.get(id);
            if (t == null) {
                t = model.token(id);
            }
            if (t != null) {
                tokens.add(t);
            }
        }
        if (decoder == null) {
            return String.join(" ", tokens); // what Hugging Face does without a decoder
        }
        return String.join("", decoder.decodeChain(tokens, state));
    }

    /** The number of ids: one more than the largest id of the vocabulary or the added tokens. */
    public int vocabSize() {
        return vocabSize;
    }

    /** The id of a token, given as it is spelled in the vocabulary (byte-level: {@code "Ġworld"}). */
    public OptionalInt tokenId(String token) {
        Integer id = addedByContent.get(token);
        if (id == null) {
            id = model.id(token);
        }
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /**
     * The vocabulary string of an id (byte-level tokens spell bytes, e.g. {@code "Ġworld"}; use
     * {@link #decode} for text).
     *
     * @throws IllegalArgumentException if no token has this id
     */
    public String token(int id) {
        String t = addedById.get(id);
        if (t == null) {
            t = model.token(id);
        }
        if (t == null) {
            throw new IllegalArgumentException("no token has id " + id + " in " + file + " (" + vocabSize + " ids)");
        }
        return t;
    }

    /** Ids of the added tokens marked special (skipped by {@code decode(ids, true)}). */
    public Set<Integer> specialIds() {
        return specialIds;
    }

    /** The id of {@code bos_token}, or null if the tokenizer has none (Qwen). */
    public Integer bosId() {
        return bosId;
    }

    /**
     * Ids that end a generation: {@code eos_token} of tokenizer_config.json, then the {@code eos_token_id}s of
     * generation_config.json (Qwen3 ends chats with {@code <|im_end|>} and raw text with
     * {@code <|endoftext|>}).
     */
    public List<Integer> eosIds() {
        return eosIds;
    }

    /** A new incremental decoder for one generated sequence. */
    public Stream newDecodeStream(boolean skipSpecialTokens) {
        return new Stream(skipSpecialTokens);
    }

    /** Prompt tokens an output stream decodes after, so the first output token decodes as it would mid-text. */
    private static final int STREAM_CONTEXT = 4;

    /**
     * A new incremental decoder for the tokens generated after {@code prompt}: the last few prompt tokens
     * are decoded first as context and never emitted, so that, for example, a SentencePiece word piece
     * keeps its leading space (it is only dropped at the very start of a text), as vLLM's detokenizer does.
     */
    public Stream newDecodeStream(boolean skipSpecialTokens, int[] prompt) {
        Stream s = new Stream(skipSpecialTokens);
        int n = Math.min(STREAM_CONTEXT, prompt.length);
        if (n > 0) {
            Decoder.State state = new Decoder.State(true);
            String text = decode(prompt, prompt.length - n, prompt.length, skipSpecialTokens, state);
            if (!state.incompleteTail) { // a character split across prompt and output: decode without context
                System.arraycopy(prompt, prompt.length - n, s.ids, 0, n);
                s.size = n;
                s.prefix = text;
                s.prefixIndex = n;
            }
        }
        return s;
    }

    @Override
    public String toString() {
        return "Tokenizer[" + file + ", " + vocabSize + " ids]";
    }

    /**
     * Decodes a sequence one token at a time, for streaming generated text.
     *
     * <p>{@link #push} returns only text that is final: the concatenation of everything it returns, followed
     * by {@link #flush}, equals {@code decode} of all the ids. A multi-byte character whose bytes are spread
     * over several tokens is held back until its last byte arrives, so no chunk ever ends in a broken
     * character or U+FFFD. Each step decodes a short window: the tokens since the previous emission plus the
     * ones before them, because a decoder may treat the start of its input specially (SentencePiece drops the
     * leading space) and the text of the new tokens is the difference between two decodes of that window.
     * The same scheme as Hugging Face's {@code DecodeStream}.
     *
     * <p>Not thread-safe: one stream per sequence.
     */
    public final class Stream {
        private final boolean skipSpecialTokens;
        private int[] ids = new int[16];
        private int size;
        private String prefix = "";
        private int prefixIndex;

        private Stream(boolean skipSpecialTokens) {
            this.skipSpecialTokens = skipSpecialTokens;
        }

        /** Adds the next token; returns the text it completes (often empty while a character is incomplete). */
        public String push(int id) {
            if (prefix.isEmpty() && size > 0) {
                // the window so far decodes to nothing (a stripped space, a skipped special token): start the
                // next difference after it
                Decoder.State state = new Decoder.State(true);
                String text = decode(ids, 0, size, skipSpecialTokens, state);
                if (!state.incompleteTail) {
                    prefix = text;
                    prefixIndex = size;
                }
            }
            if (size == ids.length) {
                ids = Arrays.copyOf(ids, size * 2);
            }
            ids[size++] = id;
            Decoder.State state = new Decoder.State(true);
            String text = decode(ids, 0, size, skipSpecialTokens, state);
            if (state.incompleteTail || text.length() <= prefix.length()) {
                return "";
            }
            String chunk = newText(text);
            // slide the window: keep the tokens from the previous emission on, as context
            int newPrefixIndex = size - prefixIndex;
            System.arraycopy(ids, prefixIndex, ids, 0, newPrefixIndex);
            size = newPrefixIndex;
            prefix = decode(ids, 0, size, skipSpecialTokens, new Decoder.State(true));
            prefixIndex = newPrefixIndex;
            return chunk;
        }

        /**
         * Ends the sequence: returns what is still held back (an incomplete character becomes U+FFFD) and
         * resets the stream.
         */
        public String flush() {
            Decoder.State state = new Decoder.State(true);
            String text = decode(ids, 0, size, skipSpecialTokens, state);
            if (state.incompleteTail) {
                text += Utf8.REPLACEMENT;
            }
            String rest = text.length() > prefix.length() ? newText(text) : "";
            size = 0;
            prefix = "";
            prefixIndex = 0;
            return rest;
        }

        /** The part of a window's text after the prefix already emitted. */
        private String newText(String text) {
            if (text.startsWith(prefix)) {
                return text.substring(prefix.length());
            }
            // no supported decoder rewrites earlier text when a token is appended; if one did, emit from the
            // first difference rather than repeat text
            int common = 0;
            while (common < prefix.length() && common < text.length() && prefix.charAt(common) == text.charAt(common)) {
                common++;
            }
            if (common > 0 && Character.isHighSurrogate(text.charAt(common - 1))) {
                common--;
            }
            LOG.debug("decode stream: window text no longer starts with the emitted prefix; emitting from {}", common);
            return text.substring(common);
        }
    }
}
