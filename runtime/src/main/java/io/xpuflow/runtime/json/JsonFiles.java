package io.xpuflow.runtime.json;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.core.io.JsonEOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reading the JSON files of a model directory ({@code config.json}, tokenizer files, the shard index, a
 * safetensors header) without letting their content into error messages.
 *
 * <p>A model directory may be a user's, and {@code config.json} may be a symbolic link to any file the process
 * can read: Jackson's own messages quote the offending token ({@code Unrecognized token 'root'} for
 * {@code /etc/passwd}), and messages end up in logs, dead-letter records and HTTP answers. So a parse failure is
 * described by its position and kind only, and the Jackson exception is not kept as the cause (its message
 * would print with any stack trace). Reads are also bounded, so that a link to {@code /dev/zero} or a large file
 * fails at once instead of filling the heap.
 */
public final class JsonFiles {
    private JsonFiles() {}

    /** Thrown by {@link #readBounded} for a file longer than its limit. */
    public static final class TooLargeException extends IOException {
        private static final long serialVersionUID = 1L;

        TooLargeException(long limit) {
            super("larger than " + limit + " bytes");
        }
    }

    /**
     * The bytes of {@code file}, read up to {@code maxBytes}.
     *
     * @throws TooLargeException if the file holds more (also a device or pipe that never ends)
     */
    public static byte[] readBounded(Path file, int maxBytes) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] bytes = in.readNBytes(maxBytes);
            if (bytes.length == maxBytes && in.read() >= 0) {
                throw new TooLargeException(maxBytes);
            }
            return bytes;
        }
    }

    /**
     * What went wrong reading a file as JSON, in words that quote nothing of it: "not valid JSON at line 1,
     * column 5", "not valid JSON: unexpected end at line 3, column 1", "not UTF-8 text", or the I/O error.
     */
    public static String describe(IOException e) {
        if (e instanceof TooLargeException) {
            return e.getMessage() + ", too large for this file (not the file it should be?)";
        }
        if (e instanceof CharacterCodingException) {
            return "not UTF-8 text";
        }
        if (e instanceof StreamConstraintsException s) {
            // the constraint messages give sizes and limits, never content
            return "not readable as JSON: " + s.getOriginalMessage();
        }
        if (e instanceof JacksonException j) {
            String kind = e instanceof JsonEOFException ? ": unexpected end" : "";
            String where = "";
            JsonLocation loc = j.getLocation();
            if (loc != null && loc.getLineNr() > 0) {
                where = " at line " + loc.getLineNr() + ", column " + loc.getColumnNr();
            }
            String message = j.getOriginalMessage();
            if (message != null && message.contains("UTF-8")) {
                kind = ": invalid UTF-8";
            }
            return "not valid JSON" + kind + where;
        }
        return "cannot read: " + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
    }
}
