package io.xpuflow.connector.records;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.xpuflow.connector.kafka.DeadLetterHeaders;
import io.xpuflow.connector.kafka.JsonResultMapper;
import io.xpuflow.connector.kafka.OutputRecord;
import io.xpuflow.connector.kafka.PromptRecord;
import io.xpuflow.connector.kafka.RecordSizeLimit;
import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.InvalidInputException;
import io.xpuflow.runtime.engine.FinishReason;
import io.xpuflow.runtime.engine.GenerationRequest;
import io.xpuflow.runtime.engine.GenerationResult;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Property-based tests of the request parser and what the Kafka pipeline writes for its outcome: whatever
 * bytes arrive, the parser gives a request or an {@link InvalidInputException} with a code and a message,
 * never another exception (which would be reported as a bug, or with the wrong code), and the output record
 * of either stays within the producer's limit.
 *
 * <p>Plain JUnit: each property runs once per fixed seed and draws {@value #TRIES_PER_SEED} inputs from small
 * generators over a {@link SplittableRandom}. Every input has a case seed of its own, so a failure names the
 * seed, the try, the case seed and the (shortened) input; {@code generator.apply(new SplittableRandom(caseSeed))}
 * gives that input again.
 */
class RequestParserPropertyTest {
    static final ObjectMapper JSON = new ObjectMapper();
    /** A small prompt limit, so that PROMPT_TOO_LONG is reached too. */
    static final RequestParser PARSER = new RequestParser(SamplingDefaults.ENGINE, 200);
    static final RecordSizeLimit LIMIT = new RecordSizeLimit(4096);
    static final JsonResultMapper MAPPER = new JsonResultMapper(new ResponseWriter(), LIMIT);
    /** Inputs drawn per seed: 8 seeds make 400 tries of a property, 6 seeds 300. */
    static final int TRIES_PER_SEED = 50;

    /** The outcome of parsing: a request, or an error with its code; anything else fails the property. */
    record Outcome(GenerationRequest request, InvalidInputException error) {}

    static Outcome parse(byte[] value) {
        try {
            GenerationRequest r = PARSER.parse(value);
            assertThat(r).isNotNull();
            assertThat(r.id()).isNotBlank();
            return new Outcome(r, null);
        } catch (InvalidInputException e) {
            assertThat(e.code()).isNotNull();
            assertThat(e.getMessage()).isNotBlank();
            return new Outcome(null, e);
        }
    }

    /** Parses, then writes the output record the pipeline would write; checks it is JSON and fits. */
    static Outcome parseAndWrite(byte[] value) throws Exception {
        Outcome o = parse(value);
        PromptRecord in = new PromptRecord("in", 0, 1L, new byte[] {'k'}, value);
        OutputRecord out;
        if (o.error() != null) {
            out = MAPPER.onError(in, o.error().requestId(), o.error().code(), o.error().getMessage());
            assertThat(out.failure().code()).isEqualTo(o.error().code());
        } else {
            out = MAPPER.onResult(in, new GenerationResult(o.request().id(), "text", new int[] {1}, FinishReason.STOP,
                    new GenerationResult.Usage(1, 1, 0, 0, new int[] {1}, 0), new GenerationResult.Timings(0, 0, 0, 0),
                    List.of()));
        }
        var headers = out.failure() == null ? null : DeadLetterHeaders.of(out.failure(), out.requestId());
        assertThat(LIMIT.fits(out.key(), out.value(), headers)).as("record of %d bytes", out.value().length).isTrue();
        JsonNode n = JSON.readTree(out.value());
        if (o.request() != null && out.kind() == OutputRecord.Kind.RESULT) {
            // the id in the output is the id that was sent: no two requests share an output id
            assertThat(n.get("id").asText()).isEqualTo(o.request().id());
        }
        return o;
    }

    // ---- properties ----

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1L, 2L, 3L, 5L, 8L, 13L, 21L, 0x5eed_cafe_f00dL})
    void anyBytesGiveARequestOrACodedError(long seed) {
        forAll(seed, RequestParserPropertyTest::bytes, RequestParserPropertyTest::show,
                RequestParserPropertyTest::parseAndWrite);
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {101L, 102L, 103L, 105L, 108L, 113L, 121L, 0x0dd_ba11L})
    void anyJsonDocumentGivesARequestOrACodedError(long seed) {
        forAll(seed, RequestParserPropertyTest::request, RequestParserPropertyTest::show, doc -> {
            Outcome first = parseAndWrite(doc.getBytes(StandardCharsets.UTF_8));
            // and the same one each time: a replay after a failover meets the same outcome
            Outcome again = parse(doc.getBytes(StandardCharsets.UTF_8));
            if (first.error() != null) {
                assertThat(again.error()).isNotNull();
                assertThat(again.error().code()).isEqualTo(first.error().code());
                assertThat(again.error().getMessage()).isEqualTo(first.error().getMessage());
            } else {
                assertThat(again.request().id()).isEqualTo(first.request().id());
                assertThat(again.request().sampling()).isEqualTo(first.request().sampling());
            }
        });
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {201L, 202L, 203L, 205L, 208L, 0xbad_5eedL})
    void mutatedRequestsGiveARequestOrACodedError(long seed) {
        forAll(seed, RequestParserPropertyTest::mutated, Mutated::toString, m -> parseAndWrite(m.bytes()));
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {301L, 302L, 303L, 305L, 308L, 0x1d_1dL})
    void anIdIsReadAsSentOrRefused(long seed) {
        forAll(seed, RequestParserPropertyTest::string, RequestParserPropertyTest::show, id -> {
            Outcome o = parseAndWrite(("{\"id\": " + quote(id) + ", \"prompt\": \"x\"}").getBytes(StandardCharsets.UTF_8));
            if (o.request() != null) {
                assertThat(o.request().id()).isEqualTo(id);
            } else {
                // refused only for a reason: blank, too long, or not proper UTF-16 (a lone surrogate)
                assertThat(o.error().code()).isIn(ErrorCode.INVALID_PARAM, ErrorCode.INVALID_JSON);
            }
        });
    }

    // ---- the runner ----

    /** A property of one input; any exception or failed assertion falsifies it. */
    @FunctionalInterface
    interface Check<T> {
        void check(T input) throws Exception;
    }

    /**
     * Draws {@link #TRIES_PER_SEED} inputs, each from a {@link SplittableRandom} of its own case seed (taken
     * from {@code seed}), and checks each; the first failure is reported with the seed, the try, the case
     * seed and the input, shortened.
     */
    static <T> void forAll(long seed, Function<SplittableRandom, T> generator, Function<T, String> show,
                           Check<T> property) {
        SplittableRandom seeds = new SplittableRandom(seed);
        for (int i = 0; i < TRIES_PER_SEED; i++) {
            long caseSeed = seeds.nextLong();
            T input = generator.apply(new SplittableRandom(caseSeed));
            try {
                property.check(input);
            } catch (Exception | AssertionError | StackOverflowError e) {
                throw new AssertionError(String.format(
                        "property falsified: seed %d, try %d of %d, case seed %dL%n  input: %s%n  cause: %s",
                        seed, i + 1, TRIES_PER_SEED, caseSeed, show.apply(input), printable(String.valueOf(e))), e);
            }
        }
    }

    // ---- generators ----

    static final List<String> FIELDS = List.of("id", "prompt", "messages", "max_tokens", "min_tokens", "temperature",
            "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty", "stop",
            "stop_token_ids", "seed", "logprobs", "ignore_eos", "return_token_ids", "metadata", "n", "best_of", "stream",
            "response_format", "guided_json", "model", "role", "content");

    static final List<String> SPECIAL_STRINGS = List.of("", " ", "a", "r-1", "\u00e9", "\uD83C\uDF38", "\\", "\"",
            "\uD800", "\uDC00", "\uDC00\uD800", "\uD800\uD800", "\t", "\u0000", "\uFFFF", "\u2028");

    static final List<String> NUMBERS = List.of("0.5", "1.0", "10.0", "-0", "1e400", "-1e-400", "2.5", "1e3",
            "9223372036854775808", "0.0000001", "1E2");

    static final long[] EDGE_LONGS = {0, 1, -1, 2, Integer.MAX_VALUE, Integer.MIN_VALUE, Integer.MAX_VALUE + 1L,
            Long.MAX_VALUE, Long.MIN_VALUE, Long.MAX_VALUE - 1, 4096, 65536};

    /** Values put in place of a field's value: wrong types, numbers beyond any range, NaN-like and broken tokens. */
    static final List<String> BAD_VALUES = List.of("NaN", "-NaN", "nan", "Infinity", "-Infinity", "+Infinity", "inf",
            "undefined", "None", "True", "'x'", "+1", "01", "-01", "1.", ".5", "0x10", "1e", "1e+", "-", "--1",
            "1e999", "-1e999", "1e-999", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
            "2147483648", "-2147483649", "4294967296", "1.7976931348623157E309", "4.9E-325",
            "123456789012345678901234567890.5", "null", "true", "false", "-0", "0", "-1", "0.0", "-0.0",
            "\"\"", "\" \"", "\"1\"", "\"0.5\"", "\"NaN\"", "\"true\"", "\"\\ud800\"", "\"x\\udc00\"", "[]", "{}",
            "[null]", "[\"a\",1]", "[[1]]", "{\"a\":1}", "{\"role\":\"user\"}", "[1,2", "{\"a\"", "\"unterminated");

    static final String JSONISH = "{}[]\":,\\ \nu0123456789.e-+tfnalsrid";

    /** Any bytes up to 300 long: uniform noise, JSON-ish ASCII, and UTF-8 with valid and invalid sequences. */
    static byte[] bytes(SplittableRandom r) {
        int n = r.nextInt(4) == 0 ? r.nextInt(8) : r.nextInt(301);
        var out = new java.io.ByteArrayOutputStream(n + 4);
        int style = r.nextInt(3); // 0: any bytes; 1: JSON-ish ASCII; 2: all kinds mixed, UTF-8 sequences included
        while (out.size() < n) {
            switch (style == 0 ? 0 : style == 1 ? 1 + 2 * r.nextInt(2) : r.nextInt(4)) {
                case 0 -> out.write(r.nextInt(256));
                case 1 -> out.write(JSONISH.charAt(r.nextInt(JSONISH.length())));
                case 2 -> out.writeBytes(utf8Sequence(r));
                default -> out.writeBytes(pick(r, List.of("{", "}", "\"id\":", "\"prompt\":", "\"\\ud800\"", "null",
                        "[", "]", ",", "\"")).getBytes(StandardCharsets.UTF_8));
            }
        }
        return Arrays.copyOf(out.toByteArray(), n);
    }

    /** One UTF-8 sequence, well-formed or not: overlong, an encoded surrogate, truncated, out of range, stray. */
    static byte[] utf8Sequence(SplittableRandom r) {
        return switch (r.nextInt(8)) {
            case 0 -> String.valueOf((char) r.nextInt(0x80, 0x800)).getBytes(StandardCharsets.UTF_8);
            case 1 -> new String(Character.toChars(0x10000 + r.nextInt(0x100000))).getBytes(StandardCharsets.UTF_8);
            case 2 -> new byte[] {(byte) 0xC0, (byte) (0x80 | r.nextInt(64))};                          // overlong
            case 3 -> new byte[] {(byte) 0xED, (byte) (0xA0 | r.nextInt(32)), (byte) (0x80 | r.nextInt(64))}; // surrogate
            case 4 -> new byte[] {(byte) (0xE0 | r.nextInt(16)), (byte) (0x80 | r.nextInt(64))};         // truncated
            case 5 -> new byte[] {(byte) (0xF5 + r.nextInt(11))};                                        // never in UTF-8
            case 6 -> new byte[] {(byte) (0x80 | r.nextInt(64))};                                        // stray continuation
            default -> new byte[] {(byte) 0xF4, (byte) (0x90 | r.nextInt(16)), (byte) 0x80, (byte) 0x80}; // beyond U+10FFFF
        };
    }

    /** Any UTF-16 text, lone surrogates included (written as backslash-u escapes, the only way they fit in UTF-8 JSON). */
    static String string(SplittableRandom r) {
        int k = r.nextInt(6);
        if (k < 3) {
            return chars(r, r.nextInt(13), c -> switch (c.nextInt(5)) {
                case 0 -> (char) c.nextInt(0x20);          // control characters
                case 1, 2 -> (char) c.nextInt(0x20, 0x7f); // printable ASCII
                case 3 -> (char) c.nextInt(0x80, 0x800);
                default -> (char) c.nextInt(0x10000);      // any unit, surrogates included
            });
        } else if (k < 5) {
            return chars(r, r.nextInt(7), c -> (char) c.nextInt(0xD7F0, 0xE011)); // around the surrogate range
        }
        return pick(r, SPECIAL_STRINGS);
    }

    static String chars(SplittableRandom r, int n, Function<SplittableRandom, Character> unit) {
        StringBuilder b = new StringBuilder(n);
        for (int i = 0; i < n; i++) {
            b.append((char) unit.apply(r));
        }
        return b.toString();
    }

    static long anyLong(SplittableRandom r) {
        return r.nextInt(4) == 0 ? EDGE_LONGS[r.nextInt(EDGE_LONGS.length)] : r.nextLong();
    }

    static String scalar(SplittableRandom r) {
        return switch (r.nextInt(8)) {
            case 0, 1, 2 -> quote(string(r));
            case 3, 4 -> String.valueOf(r.nextInt(-3, 601));
            case 5 -> String.valueOf(anyLong(r));
            case 6 -> pick(r, NUMBERS);
            default -> pick(r, List.of("true", "false", "null"));
        };
    }

    /** A JSON value nested up to {@code depth} arrays or objects deep. */
    static String value(SplittableRandom r, int depth) {
        int k = depth == 0 ? 0 : r.nextInt(6);
        if (k < 4) {
            return scalar(r);
        }
        List<String> items = new ArrayList<>();
        for (int i = r.nextInt(5); i > 0; i--) {
            items.add(k == 4 ? value(r, depth - 1) : member(r, depth - 1).json());
        }
        return k == 4 ? "[" + String.join(",", items) + "]" : "{" + String.join(",", items) + "}";
    }

    /** A member of an object: a key (mostly a request field's name) and its value as JSON text. */
    record Member(String key, String value) {
        String json() {
            return quote(key) + ":" + value;
        }
    }

    static Member member(SplittableRandom r, int depth) {
        String key = r.nextInt(5) < 4 ? pick(r, FIELDS) : string(r);
        return new Member(key, value(r, depth));
    }

    /** The members of a request: mostly an id and a prompt or messages, then any other fields. */
    static List<Member> requestMembers(SplittableRandom r) {
        List<Member> members = new ArrayList<>();
        switch (r.nextInt(6)) {
            case 0, 1, 2, 3 -> members.add(new Member("id", quote("r" + string(r))));
            case 4 -> members.add(new Member("id", scalar(r)));
            default -> { }
        }
        switch (r.nextInt(6)) {
            case 0, 1, 2 -> members.add(new Member("prompt", quote(string(r))));
            case 3 -> {
                List<String> tokens = new ArrayList<>();
                for (int i = r.nextInt(6); i > 0; i--) {
                    tokens.add(String.valueOf(r.nextInt(-1, 601)));
                }
                members.add(new Member("prompt", "[" + String.join(",", tokens) + "]"));
            }
            case 4 -> {
                List<String> messages = new ArrayList<>();
                for (int i = r.nextInt(4); i > 0; i--) {
                    messages.add("{\"role\":" + quote(pick(r, List.of("user", "system", "", "assistant")))
                            + ",\"content\":" + quote(string(r)) + "}");
                }
                members.add(new Member("messages", "[" + String.join(",", messages) + "]"));
            }
            default -> { }
        }
        for (int i = r.nextInt(6); i > 0; i--) {
            members.add(member(r, 2));
        }
        return members;
    }

    static String render(List<Member> members) {
        List<String> parts = new ArrayList<>();
        for (Member m : members) {
            parts.add(m.json());
        }
        return "{" + String.join(",", parts) + "}";
    }

    /**
     * The members of a request the parser accepts: an id, a prompt or messages, and some sampling fields
     * with values in range (so that a mutation of one of them is what the parser meets first); when
     * {@code sloppy}, each number is out of its range one time in three (so range checks are reached too).
     */
    static List<Member> validMembers(SplittableRandom r, boolean sloppy) {
        List<Member> members = new ArrayList<>();
        members.add(new Member("id", quote("r-" + r.nextInt(1_000_000))));
        if (r.nextBoolean()) {
            members.add(new Member("prompt", quote(ascii(r, r.nextInt(1, 40)))));
        } else {
            members.add(new Member("messages", "[{\"role\":\"system\",\"content\":" + quote(ascii(r, r.nextInt(20)))
                    + "},{\"role\":\"user\",\"content\":" + quote(ascii(r, r.nextInt(1, 20))) + "}]"));
        }
        List<Member> optional = List.of(
                new Member("max_tokens", sloppy(r, sloppy, String.valueOf(r.nextInt(1, 65)))),
                new Member("min_tokens", sloppy(r, sloppy, String.valueOf(r.nextInt(0, 3)))),
                new Member("temperature", sloppy(r, sloppy, decimal(r, 0, 2))),
                new Member("top_p", sloppy(r, sloppy, decimal(r, 0.05, 1))),
                new Member("top_k", sloppy(r, sloppy, String.valueOf(r.nextInt(0, 50)))),
                new Member("min_p", sloppy(r, sloppy, decimal(r, 0, 0.5))),
                new Member("presence_penalty", sloppy(r, sloppy, decimal(r, -2, 2))),
                new Member("frequency_penalty", sloppy(r, sloppy, decimal(r, -2, 2))),
                new Member("repetition_penalty", sloppy(r, sloppy, decimal(r, 1, 1.5))),
                new Member("stop", r.nextBoolean() ? quote(ascii(r, r.nextInt(1, 4))) : "[\"\\n\",\"###\"]"),
                new Member("stop_token_ids", "[" + r.nextInt(0, 600) + "," + r.nextInt(0, 600) + "]"),
                new Member("seed", String.valueOf(r.nextLong())),
                new Member("logprobs", sloppy(r, sloppy, String.valueOf(r.nextInt(0, 5)))),
                new Member("ignore_eos", String.valueOf(r.nextBoolean())),
                new Member("return_token_ids", String.valueOf(r.nextBoolean())),
                new Member("metadata", "{\"user\":" + r.nextInt(100) + ",\"tags\":[\"a\",null]}"),
                new Member("n", "1"),
                new Member("stream", "false"),
                new Member("model", quote("m")));
        for (Member m : optional) {
            if (r.nextInt(3) == 0) {
                members.add(m);
            }
        }
        return members;
    }

    /** {@code inRange}, or when {@code sloppy} one time in three a number likely out of the field's range. */
    static String sloppy(SplittableRandom r, boolean sloppy, String inRange) {
        if (!sloppy || r.nextInt(3) > 0) {
            return inRange;
        }
        return r.nextBoolean() ? String.valueOf(r.nextInt(-10, 1000)) : decimal(r, -5, 5);
    }

    static String ascii(SplittableRandom r, int n) {
        return chars(r, n, c -> (char) c.nextInt(0x20, 0x7f));
    }

    static String decimal(SplittableRandom r, double from, double to) {
        return String.format(java.util.Locale.ROOT, "%.3f", from + (to - from) * r.nextDouble());
    }

    /** A JSON object: mostly any members, one in four a request that is valid but for some numbers. */
    static String request(SplittableRandom r) {
        return render(r.nextInt(4) == 0 ? validMembers(r, true) : requestMembers(r));
    }

    /** A request made wrong in one place, and how. */
    record Mutated(String how, byte[] bytes) {
        @Override
        public String toString() {
            return how + ": " + show(bytes);
        }
    }

    /**
     * A request (half the time a valid one) with one field's value replaced by a wrong one, or cut short, or
     * with one byte replaced or one bit flipped.
     */
    static Mutated mutated(SplittableRandom r) {
        List<Member> members = r.nextBoolean() ? validMembers(r, false) : requestMembers(r);
        int k = r.nextInt(20);
        if (k < 8) {
            // a field's value replaced: a wrong type, a number out of the field's range or beyond any range,
            // a NaN-like or broken token, a long string
            String bad = switch (r.nextInt(6)) {
                case 0, 1 -> pick(r, BAD_VALUES);
                case 2 -> value(r, 2);
                case 3 -> (r.nextBoolean() ? "-" : "") + digits(r, r.nextInt(19, 400)) + (r.nextBoolean() ? "" : ".5");
                case 4 -> switch (r.nextInt(4)) {
                    case 0 -> String.valueOf(anyLong(r));
                    case 1 -> String.valueOf(r.nextInt(-1000, 100_000));
                    case 2 -> decimal(r, -10, 10);
                    default -> pick(r, List.of("1e308", "-1e308", "1e-308", "4.9e-324", "0.0", "65536", "-65536"));
                };
                default -> quote("x".repeat(r.nextInt(100, 5000)));
            };
            String how;
            if (!members.isEmpty() && r.nextInt(4) > 0) {
                int i = r.nextInt(members.size());
                how = "'" + members.get(i).key() + "' set to " + shorten(bad);
                members.set(i, new Member(members.get(i).key(), bad));
            } else {
                String key = pick(r, FIELDS);
                how = "'" + key + "' added as " + shorten(bad);
                members.add(r.nextInt(members.size() + 1), new Member(key, bad));
            }
            return new Mutated(how, render(members).getBytes(StandardCharsets.UTF_8));
        }
        byte[] b = render(members).getBytes(StandardCharsets.UTF_8);
        int i = r.nextInt(b.length);
        if (k < 13) {
            return new Mutated("cut at " + i + " of " + b.length, Arrays.copyOf(b, i));
        }
        byte[] m = b.clone();
        m[i] = k < 17 ? (byte) r.nextInt(256) : (byte) (b[i] ^ (1 << r.nextInt(8)));
        return new Mutated(String.format("byte %d of %d: 0x%02x -> 0x%02x", i, b.length, b[i] & 0xff, m[i] & 0xff), m);
    }

    static String digits(SplittableRandom r, int n) {
        StringBuilder b = new StringBuilder(n).append((char) ('1' + r.nextInt(9)));
        while (b.length() < n) {
            b.append((char) ('0' + r.nextInt(10)));
        }
        return b.toString();
    }

    static <T> T pick(SplittableRandom r, List<T> options) {
        return options.get(r.nextInt(options.size()));
    }

    /** A JSON string literal; surrogates and control characters as backslash-u escapes. */
    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || Character.isSurrogate(c)) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    // ---- failure messages ----

    static final int SHOWN = 200;

    /** Text as a Java literal would write it (anything not printable ASCII escaped), shortened. */
    static String show(String s) {
        StringBuilder b = new StringBuilder("\"");
        int i = 0;
        for (; i < s.length() && b.length() < SHOWN; i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c >= 0x20 && c < 0x7f) {
                b.append(c);
            } else {
                b.append(String.format("\\u%04x", (int) c));
            }
        }
        b.append('"');
        return i < s.length() ? b + "... (" + s.length() + " chars)" : b.toString();
    }

    /** Bytes as text, each byte that is not printable ASCII as \xNN, shortened. */
    static String show(byte[] bytes) {
        StringBuilder b = new StringBuilder("b\"");
        int i = 0;
        for (; i < bytes.length && b.length() < SHOWN; i++) {
            int c = bytes[i] & 0xff;
            if (c == '"' || c == '\\') {
                b.append('\\').append((char) c);
            } else if (c >= 0x20 && c < 0x7f) {
                b.append((char) c);
            } else {
                b.append(String.format("\\x%02x", c));
            }
        }
        b.append('"');
        return b + (i < bytes.length ? "... (" : " (") + bytes.length + " bytes)";
    }

    /** A message with everything but printable ASCII and line breaks escaped (lone surrogates included), shortened. */
    static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length() && b.length() < 4 * SHOWN; i++) {
            char c = s.charAt(i);
            if (c == '\n') {
                b.append("\n    ");
            } else if (c >= 0x20 && c < 0x7f) {
                b.append(c);
            } else {
                b.append(String.format("\\u%04x", (int) c));
            }
        }
        return b.length() < 4 * SHOWN ? b.toString() : b + "... (" + s.length() + " chars)";
    }

    static String shorten(String s) {
        return s.length() <= SHOWN ? s : s.substring(0, SHOWN) + "... (" + s.length() + " chars)";
    }
}
