package io.xpuflow.connector.records;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.MalformedInputException;
import java.nio.charset.StandardCharsets;

/** The one strictly configured Jackson mapper of the records, and UTF-8 helpers. Thread-safe. */
final class Json {
    /**
     * Strict JSON (RFC 8259): no NaN/Infinity literals, no comments, no trailing content, no duplicate
     * keys (ambiguous: which {@code max_tokens} did the producer mean?). Floats are read as BigDecimal,
     * so an out-of-range number such as {@code 1e400} stays detectable instead of silently becoming
     * infinity. Output is strict JSON in UTF-8.
     */
    static final ObjectMapper MAPPER = JsonMapper.builder()
            .disable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            // emoji and other characters beyond the BMP as 4-byte UTF-8, not as \uD83C\uDF38 escape pairs
            .enable(JsonWriteFeature.COMBINE_UNICODE_SURROGATES_IN_UTF8)
            .build();

    static final JsonFactory FACTORY = MAPPER.getFactory();

    private Json() {}

    /**
     * Decodes UTF-8 strictly: overlong forms, encoded surrogates and truncated sequences are errors.
     *
     * @throws MalformedInputException with the byte offset of the first bad sequence in its message
     */
    static String decodeStrict(byte[] bytes) throws CharacterCodingException {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length); // UTF-16 never needs more chars than UTF-8 bytes
        var result = decoder.decode(in, out, true);
        if (result.isError()) {
            throw new Utf8Exception(in.position(), result.length());
        }
        result = decoder.flush(out);
        if (result.isError()) {
            throw new Utf8Exception(in.position(), result.length());
        }
        return out.flip().toString();
    }

    /** A malformed UTF-8 sequence at a byte offset. */
    static final class Utf8Exception extends MalformedInputException {
        private static final long serialVersionUID = 1L;
        private final int offset;

        Utf8Exception(int offset, int length) {
            super(length);
            this.offset = offset;
        }

        int offset() {
            return offset;
        }

        @Override
        public String getMessage() {
            return "malformed UTF-8 sequence of " + getInputLength() + " byte(s) at byte offset " + offset;
        }
    }

    /** Decodes UTF-8, replacing each malformed sequence with U+FFFD: for echoing input in error records. */
    static String decodeLossy(byte[] bytes, int offset, int length) {
        return new String(bytes, offset, length, StandardCharsets.UTF_8);
    }

    /** Jackson's message without its source excerpt and without hints about Jackson's own feature flags. */
    static String describe(JsonProcessingException e) {
        String m = e.getOriginalMessage();
        m = m.replaceAll(":? ?\\(?(?:enable|disable) `[^`]+`[^)\\n]*\\)?", "");
        m = m.replace('\n', ' ').strip();
        var loc = e.getLocation();
        if (loc != null && loc.getLineNr() > 0) {
            m += " (line " + loc.getLineNr() + ", column " + loc.getColumnNr() + ")";
        }
        return m;
    }

    /** Bytes of {@code s} in UTF-8 (no allocation); -1 when it holds an unpaired surrogate. */
    static long utf8Length(String s) {
        long n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                n += 1;
            } else if (c < 0x800) {
                n += 2;
            } else if (Character.isHighSurrogate(c)) {
                if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                    n += 4;
                    i++;
                } else {
                    return -1;
                }
            } else if (Character.isLowSurrogate(c)) {
                return -1;
            } else {
                n += 3;
            }
        }
        return n;
    }
}
