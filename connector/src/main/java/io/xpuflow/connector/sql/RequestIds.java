package io.xpuflow.connector.sql;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Engine request ids for SQL rows, which carry no id of their own.
 *
 * <p>The id is a hash of the prompt text and nothing else (no counter, no subtask index, no time).
 * The engine seeds a request's sampler from its id when no {@code seed} is given, so this makes a
 * row's completion a function of its prompt and sampling settings: a replay after a Flink failover,
 * a re-run of the job or a different parallelism produces the same text, also with
 * {@code temperature > 0}, which is what exactly-once sinks need. The price is that equal prompts
 * with equal settings always get equal completions within and across jobs; set a per-row
 * {@code seed} in {@code LLM_GENERATE}'s options JSON for different samples of one prompt.
 */
public final class RequestIds {
    private static final String PREFIX = "sql-";

    private RequestIds() {}

    /** {@code sql-} followed by the first 64 bits of the SHA-256 of the prompt's UTF-8 bytes, in hex. */
    public static String of(String prompt) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(prompt.getBytes(StandardCharsets.UTF_8));
            return PREFIX + HexFormat.of().formatHex(digest, 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JVM has SHA-256", e);
        }
    }
}
