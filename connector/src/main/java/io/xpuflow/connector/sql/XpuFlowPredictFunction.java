package io.xpuflow.connector.sql;

import java.util.Collection;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.PredictFunction;

/**
 * {@code ML_PREDICT} with {@code 'async' = 'false'}: one row at a time, the task thread waiting for each
 * completion. Only useful for debugging; the async function lets the engine batch many rows. Errors per
 * row: see {@link Predictor}.
 */
public final class XpuFlowPredictFunction extends PredictFunction {
    private static final long serialVersionUID = 1L;

    private final XpuFlowModelProvider model;
    private transient Predictor predictor;

    XpuFlowPredictFunction(XpuFlowModelProvider model) {
        this.model = model;
    }

    @Override
    public void open(FunctionContext context) throws Exception {
        predictor = Predictor.open(model, context);
    }

    @Override
    public Collection<RowData> predict(RowData input) {
        return predictor.predict(input).join(); // never fails: errors become rows
    }

    @Override
    public void close() throws Exception {
        if (predictor != null) {
            predictor.close();
            predictor = null;
        }
    }
}
