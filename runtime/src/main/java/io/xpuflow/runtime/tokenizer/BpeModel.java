package io.xpuflow.runtime.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The BPE {@code model} of a {@code tokenizer.json}: a vocabulary and ranked merges, applied to one word at a
 * time.
 *
 * <p>A word starts as its characters (or, with {@code byte_fallback}, the {@code <0xNN>} tokens of the UTF-8
 * bytes of a character the vocabulary lacks); then, repeatedly, the adjacent pair with the best (lowest) rank
 * is merged, leftmost first among equals. A heap of candidate pairs with lazy invalidation makes that
 * O(n log n) in the word length, which matters because a tokenizer without a pre-tokenizer (Llama's
 * SentencePiece conversion) hands BPE the whole prompt as one word. Results for short words are cached.
 */
final class BpeModel {
    private static final Logger LOG = LoggerFactory.getLogger(BpeModel.class);

    /** Words up to this many chars are cached; longer ones are rare and would crowd the cache. */
    private static final int CACHE_MAX_WORD = 256;
    private static final int CACHE_MAX_ENTRIES = 100_000;

    private final Map<String, Integer> vocab;
    private final String[] idToToken;
    private final MergeTable merges;
    /** Id of each single-character token, by BMP char; -1 if none. Spares a string lookup per character. */
    private final int[] charIds;
    private final int unkId;
    private final boolean fuseUnk;
    private final int[] byteFallbackIds;
    private final String continuingSubwordPrefix;
    private final String endOfWordSuffix;
    private final boolean ignoreMerges;
    private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();

    private BpeModel(Map<String, Integer> vocab, String[] idToToken, MergeTable merges, int unkId, boolean fuseUnk,
                     int[] byteFallbackIds, String continuingSubwordPrefix, String endOfWordSuffix,
                     boolean ignoreMerges) {
        this.vocab = vocab;
        this.idToToken = idToToken;
        this.merges = merges;
        this.unkId = unkId;
        this.fuseUnk = fuseUnk;
        this.byteFallbackIds = byteFallbackIds;
        this.continuingSubwordPrefix = continuingSubwordPrefix;
        this.endOfWordSuffix = endOfWordSuffix;
        this.ignoreMerges = ignoreMerges;
        this.charIds = new int[Character.MAX_VALUE + 1];
        Arrays.fill(charIds, -1);
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            if (e.getKey().length() == 1) {
                charIds[e.getKey().charAt(0)] = e.getValue();
            }
        }
    }

    static BpeModel parse(JsonField json) {
        String type = json.type();
        if (!type.equals("BPE")) {
            throw json.get("type").error("model type '" + type + "' is not supported (supported: BPE)");
        }
        // the vocabulary and merges of a large model are 300k entries: walk the JSON nodes directly and wrap
        // one in a JsonField only to report it
        JsonField vocabJson = json.get("vocab");
        if (!vocabJson.node().isObject()) {
            throw vocabJson.error(vocabJson.isAbsent() ? "is required (an object)" : "must be an object, was "
                    + vocabJson.brief());
        }
        Map<String, Integer> vocab = new HashMap<>(vocabJson.node().size() * 2);
        int maxId = -1;
        for (Map.Entry<String, JsonNode> e : vocabJson.node().properties()) {
            JsonNode v = e.getValue();
            int id = v.isIntegralNumber() && v.canConvertToInt() && v.asInt() >= 0 ? v.asInt()
                    : vocabJson.get(e.getKey()).index(); // throws, naming the entry
            vocab.put(e.getKey(), id);
            maxId = Math.max(maxId, id);
        }
        String[] idToToken = new String[maxId + 1];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            if (idToToken[e.getValue()] != null) {
                throw vocabJson.error("gives id " + e.getValue() + " to both '" + idToToken[e.getValue()] + "' and '"
                        + e.getKey() + "'");
            }
            idToToken[e.getValue()] = e.getKey();
        }

        String prefix = json.get("continuing_subword_prefix").textOr("");
        String suffix = json.get("end_of_word_suffix").textOr("");
        JsonField mergesJson = json.get("merges");
        JsonNode mergeList = mergesJson.isAbsent() ? JsonNodeFactory.instance.arrayNode() : mergesJson.node();
        if (!mergeList.isArray()) {
            throw mergesJson.error("must be a list, was " + mergesJson.brief());
        }
        MergeTable merges = new MergeTable(mergeList.size());
        for (int rank = 0; rank < mergeList.size(); rank++) {
            JsonNode m = mergeList.get(rank);
            String a;
            String b;
            if (m.isTextual()) {
                // the older format: "a b" (tokens never contain a plain space, byte-level spells it Ġ)
                String s = m.asText();
                int sp = s.indexOf(' ');
                if (sp <= 0 || sp != s.lastIndexOf(' ') || sp == s.length() - 1) {
                    throw merge(mergesJson, rank).error("must be two tokens separated by one space, was "
                            + merge(mergesJson, rank).brief());
                }
                a = s.substring(0, sp);
                b = s.substring(sp + 1);
            } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
                a = m.get(0).asText();
                b = m.get(1).asText();
            } else {
                throw merge(mergesJson, rank).error("must be a pair of tokens, was " + merge(mergesJson, rank).brief());
            }
            Integer aId = vocab.get(a);
            Integer bId = vocab.get(b);
            // with a continuing-subword prefix ("##"), "a" + "##b" makes "ab"
            String merged = a + (!prefix.isEmpty() && b.startsWith(prefix) ? b.substring(prefix.length()) : b);
            Integer newId = vocab.get(merged);
            if (aId == null || bId == null || newId == null) {
                String missing = aId == null ? a : bId == null ? b : merged;
                throw merge(mergesJson, rank).error("merges '" + a + "' and '" + b + "' but '" + missing
                        + "' is not in model.vocab");
            }
            merges.put(aId, bId, rank, newId);
        }

        JsonField dropout = json.get("dropout");
        if (!dropout.isAbsent() && dropout.node().asDouble() > 0) {
            // dropout is a training-time regulariser; inference must be deterministic
            LOG.warn("{}: model.dropout={} is ignored: encoding is deterministic", json.file(), dropout.node());
        }

        int unkId = -1;
        JsonField unk = json.get("unk_token");
        if (!unk.isAbsent()) {
            Integer id = vocab.get(unk.text());
            if (id == null) {
                throw unk.error("'" + unk.text() + "' is not in model.vocab");
            }
            unkId = id;
        }
        int[] byteFallbackIds = null;
        if (json.get("byte_fallback").bool(false)) {
            byteFallbackIds = new int[256];
            for (int b = 0; b < 256; b++) {
                Integer id = vocab.get(String.format("<0x%02X>", b));
                byteFallbackIds[b] = id == null ? -1 : id;
            }
        }
        return new BpeModel(vocab, idToToken, merges, unkId, json.get("fuse_unk").bool(false), byteFallbackIds,
                prefix, suffix, json.get("ignore_merges").bool(false));
    }

    private static JsonField merge(JsonField merges, int rank) {
        return merges.elements().get(rank);
    }

    /** One more than the largest id in the vocabulary. */
    int size() {
        return idToToken.length;
    }

    Integer id(String token) {
        return vocab.get(token);
    }

    /** The vocabulary string of an id, or null if the vocabulary has no such id. */
    String token(int id) {
        return id >= 0 && id < idToToken.length ? idToToken[id] : null;
    }

    /** Appends the ids of one word. */
    void encodeWord(String word, IntList out) {
        if (word.isEmpty()) {
            return;
        }
        boolean cacheable = word.length() <= CACHE_MAX_WORD;
        if (cacheable) {
            int[] hit = cache.get(word);
            if (hit != null) {
                out.addAll(hit);
                return;
            }
        }
        int[] ids = merge(word);
        if (cacheable && cache.size() < CACHE_MAX_ENTRIES) {
            cache.put(word, ids);
        }
        out.addAll(ids);
    }

    private int[] merge(String word) {
        if (ignoreMerges) {
            Integer whole = vocab.get(word);
            if (whole != null) {
                return new int[] {whole};
            }
        }
        IntList symbols = initialSymbols(word);
        int n = symbols.size();
        if (n <= 1) {
            return symbols.toArray();
        }
        int[] ids = symbols.toArray();
        int[] next = new int[n];
        int[] prev = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            long m = merges.get(ids[i], ids[i + 1]);
            if (m != MergeTable.NONE) {
                heap.push(MergeTable.rank(m), i);
            }
        }
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int rank = (int) (top >>> 32);
            int pos = (int) top;
            int right = next[pos];
            // entries go stale when a neighbour merged first: check the pair is still there
            if (ids[pos] < 0 || right < 0) {
                continue;
            }
            long m = merges.get(ids[pos], ids[right]);
            if (m == MergeTable.NONE || MergeTable.rank(m) != rank) {
                continue;
            }
            ids[pos] = MergeTable.newId(m);
            ids[right] = -1;
            int after = next[right];
            next[pos] = after;
            if (after >= 0) {
                prev[after] = pos;
                long r = merges.get(ids[pos], ids[after]);
                if (r != MergeTable.NONE) {
                    heap.push(MergeTable.rank(r), pos);
                }
            }
            int before = prev[pos];
            if (before >= 0) {
                long l = merges.get(ids[before], ids[pos]);
                if (l != MergeTable.NONE) {
                    heap.push(MergeTable.rank(l), before);
                }
            }
        }
        IntList out = new IntList(n);
        for (int i = 0; i >= 0; i = next[i]) {
            out.add(ids[i]);
        }
        return out.toArray();
    }

    /** The word as vocabulary ids before any merge: characters, byte fallbacks or the unknown token. */
    private IntList initialSymbols(String word) {
        IntList out = new IntList(word.length());
        boolean affixes = !continuingSubwordPrefix.isEmpty() || !endOfWordSuffix.isEmpty();
        boolean lastWasUnk = false;
        for (int i = 0; i < word.length(); ) {
            int cp = word.codePointAt(i);
            int len = Character.charCount(cp);
            int id;
            if (!affixes && len == 1) {
                id = charIds[word.charAt(i)];
            } else {
                String piece = word.substring(i, i + len);
                if (i > 0) {
                    piece = continuingSubwordPrefix + piece;
                }
                if (i + len == word.length()) {
                    piece = piece + endOfWordSuffix;
                }
                Integer found = vocab.get(piece);
                id = found == null ? -1 : found;
            }
            i += len;
            if (id >= 0) {
                out.add(id);
                lastWasUnk = false;
                continue;
            }
            if (byteFallback(cp, out)) {
                lastWasUnk = false;
                continue;
            }
            if (unkId >= 0) {
                if (!(fuseUnk && lastWasUnk)) {
                    out.add(unkId);
                }
                lastWasUnk = true;
            }
            // with neither byte fallback nor an unknown token the character is dropped, as Hugging Face does
        }
        return out;
    }

    private boolean byteFallback(int cp, IntList out) {
        if (byteFallbackIds == null) {
            return false;
        }
        byte[] bytes = new String(Character.toChars(cp)).getBytes(java.nio.charset.StandardCharsets.UTF_8);
        for (byte b : bytes) {
            if (byteFallbackIds[b & 0xFF] < 0) {
                return false;
            }
        }
        for (byte b : bytes) {
            out.add(byteFallbackIds[b & 0xFF]);
        }
        return true;
    }

    /** Merge rank and result by token pair, in open addressing over primitive arrays (no boxing). */
    static final class MergeTable {
        static final long NONE = -1L;
        private static final long EMPTY = -1L;
        private final long[] keys;
        private final long[] values;
        private final int mask;

        MergeTable(int expected) {
            int cap = Integer.highestOneBit(Math.max(16, expected * 2 + 1)) << 1;
            keys = new long[cap];
            values = new long[cap];
            Arrays.fill(keys, EMPTY);
            mask = cap - 1;
        }

        private static long key(int a, int b) {
            return ((long) a << 32) | (b & 0xFFFFFFFFL);
        }

        private int slot(long key) {
            long h = key * 0x9E3779B97F4A7C15L;
            return (int) (h >>> 40) & mask;
        }

        /** A pair listed twice keeps its last rank: Hugging Face collects the merges into a map the same way. */
        void put(int a, int b, int rank, int newId) {
            long k = key(a, b);
            int i = slot(k);
            while (keys[i] != EMPTY && keys[i] != k) {
                i = (i + 1) & mask;
            }
            keys[i] = k;
            values[i] = ((long) rank << 32) | (newId & 0xFFFFFFFFL);
        }

        /** The packed (rank, new id) of merging a then b, or {@link #NONE}. */
        long get(int a, int b) {
            long k = key(a, b);
            int i = slot(k);
            while (true) {
                long found = keys[i];
                if (found == k) {
                    return values[i];
                }
                if (found == EMPTY) {
                    return NONE;
                }
                i = (i + 1) & mask;
            }
        }

        static int rank(long packed) {
            return (int) (packed >>> 32);
        }

        static int newId(long packed) {
            return (int) packed;
        }
    }

    /** A binary min-heap of (rank, position) packed into longs: best rank first, then leftmost. */
    static final class LongHeap {
        private long[] heap;
        private int size;

        LongHeap(int capacity) {
            heap = new long[Math.max(4, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(int rank, int pos) {
            long v = ((long) rank << 32) | pos;
            if (size == heap.length) {
                heap = Arrays.copyOf(heap, size * 2);
            }
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (heap[parent] <= v) {
                    break;
                }
                heap[i] = heap[parent];
                i = parent;
            }
            heap[i] = v;
        }

        long pop() {
            long top = heap[0];
            long last = heap[--size];
            int i = 0;
            int half = size >>> 1;
            while (i < half) {
                int child = 2 * i + 1;
                if (child + 1 < size && heap[child + 1] < heap[child]) {
                    child++;
                }
                if (last <= heap[child]) {
                    break;
                }
                heap[i] = heap[child];
                i = child;
            }
            heap[i] = last;
            return top;
        }
    }
}
