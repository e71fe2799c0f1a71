package io.xpuflow.connector.sql;

import io.xpuflow.operators.ErrorCode;
import io.xpuflow.runtime.engine.GenerationResult;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedCatalogModel;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeFamily;
import org.apache.flink.table.types.logical.LogicalTypeRoot;

/**
 * Where a model's OUTPUT columns get their values, worked out once from the schema when the model is
 * planned.
 *
 * <p>The INPUT schema must be one character-string column: the prompt. OUTPUT columns are recognised by
 * name (exact, lower case):
 * <ul>
 *   <li>{@code finish_reason} (STRING): {@code stop}, {@code length}, or {@code error: CODE} when the row
 *       could not be generated ({@code CODE} an {@link ErrorCode}, e.g. {@code error: PROMPT_TOO_LONG});</li>
 *   <li>{@code prompt_tokens}, {@code completion_tokens} (INT or BIGINT): token counts, NULL on error;</li>
 *   <li>{@code error} (STRING): why the row could not be generated, NULL otherwise;</li>
 *   <li>the one remaining column (STRING, any name, e.g. {@code completion}): the generated text, NULL
 *       on error (so it must be nullable).</li>
 * </ul>
 *
 * @param arity number of OUTPUT columns
 * @param completion index of the completion column
 * @param finishReason index of {@code finish_reason}, or -1
 * @param promptTokens index of {@code prompt_tokens}, or -1
 * @param completionTokens index of {@code completion_tokens}, or -1
 * @param error index of {@code error}, or -1
 * @param bigintCounts which of prompt_tokens (bit 0) and completion_tokens (bit 1) are BIGINT
 */
public record ModelColumns(int arity, int completion, int finishReason, int promptTokens, int completionTokens, int error,
                    int bigintCounts) implements Serializable {

    static final String FINISH_REASON = "finish_reason";
    static final String PROMPT_TOKENS = "prompt_tokens";
    static final String COMPLETION_TOKENS = "completion_tokens";
    static final String ERROR = "error";

    /**
     * Checks a model's INPUT and OUTPUT schemas.
     *
     * @param modelName for messages
     * @throws ValidationException saying what the schema must look like
     */
    static ModelColumns of(ResolvedCatalogModel model, String modelName) {
        ResolvedSchema input = model.getResolvedInputSchema();
        List<Column> in = input.getColumns();
        if (in.size() != 1 || !isText(in.get(0).getDataType().getLogicalType())) {
            throw new ValidationException("Model '" + modelName + "' (provider 'xpuflow'): INPUT must be exactly one STRING"
                    + " column, the prompt, but is (" + describe(in) + ")");
        }
        List<Column> out = model.getResolvedOutputSchema().getColumns();
        int finishReason = -1;
        int promptTokens = -1;
        int completionTokens = -1;
        int error = -1;
        int bigint = 0;
        List<Integer> candidates = new ArrayList<>();
        for (int i = 0; i < out.size(); i++) {
            Column c = out.get(i);
            LogicalType t = c.getDataType().getLogicalType();
            switch (c.getName()) {
                case FINISH_REASON -> {
                    requireText(modelName, c);
                    finishReason = i;
                }
                case ERROR -> {
                    requireText(modelName, c);
                    requireNullable(modelName, c, "a row that was generated gets NULL");
                    error = i;
                }
                case PROMPT_TOKENS -> {
                    requireCount(modelName, c);
                    promptTokens = i;
                    bigint |= t.is(LogicalTypeRoot.BIGINT) ? 1 : 0;
                }
                case COMPLETION_TOKENS -> {
                    requireCount(modelName, c);
                    completionTokens = i;
                    bigint |= t.is(LogicalTypeRoot.BIGINT) ? 2 : 0;
                }
                default -> candidates.add(i);
            }
        }
        String recognised = "the columns recognised by name are " + FINISH_REASON + " STRING, " + PROMPT_TOKENS + " INT, "
                + COMPLETION_TOKENS + " INT and " + ERROR + " STRING";
        if (candidates.size() != 1) {
            throw new ValidationException("Model '" + modelName + "' (provider 'xpuflow'): OUTPUT must have exactly one"
                    + " STRING column for the completion besides the recognised ones, but has "
                    + (candidates.isEmpty() ? "none" : candidates.stream().map(i -> out.get(i).getName())
                    .collect(Collectors.joining(", "))) + " in (" + describe(out) + "); " + recognised);
        }
        Column completion = out.get(candidates.get(0));
        LogicalType ct = completion.getDataType().getLogicalType();
        if (!isText(ct)) {
            throw new ValidationException("Model '" + modelName + "' (provider 'xpuflow'): OUTPUT column '"
                    + completion.getName() + "' holds the completion and must be a STRING, but is " + ct + "; "
                    + recognised);
        }
        requireNullable(modelName, completion, "a row that cannot be generated gets NULL");
        return new ModelColumns(out.size(), candidates.get(0), finishReason, promptTokens, completionTokens, error,
                bigint);
    }

    /** The output row of a finished generation. */
    RowData toRow(GenerationResult r) {
        GenericRowData row = new GenericRowData(arity);
        row.setField(completion, StringData.fromString(r.text()));
        if (finishReason >= 0) {
            row.setField(finishReason, StringData.fromString(r.finishReason().wireName()));
        }
        if (promptTokens >= 0) {
            row.setField(promptTokens, count(r.usage().promptTokens(), 1));
        }
        if (completionTokens >= 0) {
            row.setField(completionTokens, count(r.usage().completionTokens(), 2));
        }
        return row;
    }

    /** The output row of a row that could not be generated: NULL completion and counts. */
    RowData errorRow(ErrorCode code, String message) {
        GenericRowData row = new GenericRowData(arity);
        if (finishReason >= 0) {
            row.setField(finishReason, StringData.fromString(errorFinishReason(code)));
        }
        if (error >= 0) {
            row.setField(error, StringData.fromString(message));
        }
        return row;
    }

    /** The {@code finish_reason} of a row that failed with {@code code}. */
    static String errorFinishReason(ErrorCode code) {
        return "error: " + code.name();
    }

    private Object count(int n, int bit) {
        return (bigintCounts & bit) != 0 ? (Object) (long) n : (Object) n;
    }

    private static boolean isText(LogicalType t) {
        return t.is(LogicalTypeFamily.CHARACTER_STRING);
    }

    private static void requireText(String modelName, Column c) {
        if (!isText(c.getDataType().getLogicalType())) {
            throw new ValidationException("Model '" + modelName + "' (provider 'xpuflow'): OUTPUT column '" + c.getName()
                    + "' must be a STRING, but is " + c.getDataType());
        }
    }

    private static void requireCount(String modelName, Column c) {
        LogicalType t = c.getDataType().getLogicalType();
        if (!t.is(LogicalTypeRoot.INTEGER) && !t.is(LogicalTypeRoot.BIGINT)) {
            throw new ValidationException("Model '" + modelName + "' (provider 'xpuflow'): OUTPUT column '" + c.getName()
                    + "' must be INT or BIGINT, but is " + c.getDataType());
        }
        requireNullable(modelName, c, "a row that cannot be generated gets NULL");
    }

    private static void requireNullable(String modelName, Column c, String why) {
        if (!c.getDataType().getLogicalType().isNullable()) {
            throw new ValidationException("Model '" + modelName + "' (provider 'xpuflow'): OUTPUT column '" + c.getName()
                    + "' must be nullable (no NOT NULL): " + why);
        }
    }

    private static String describe(List<Column> columns) {
        return columns.stream().map(c -> c.getName() + " " + c.getDataType()).collect(Collectors.joining(", "));
    }
}
