package io.xpuflow.connector.sql;

import java.util.Collection;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.functions.FunctionContext;

/**
 * {@code ML_PREDICT} with {@code 'async' = 'true'} (the planner's default when both kinds exist): takes the
 * shared engine in {@link #open}, submits each prompt in {@link #asyncPredict} and completes from the
 * engine's future, so one subtask keeps many rows in flight (Flink's {@code max-concurrent-operations})
 * and the engine batches them. Errors per row: see {@link Predictor}. Flink's ML_PREDICT {@code timeout}
 * (default 3 min) fails the job when a row takes longer; raise it for long generations.
 */
public final class XpuFlowAsyncPredictFunction extends AsyncPredictFunction {
    private static final long serialVersionUID = 1L;

    private final XpuFlowModelProvider model;
    private transient Predictor predictor;

    XpuFlowAsyncPredictFunction(XpuFlowModelProvider model) {
        this.model = model;
    }

    @Override
    public void open(FunctionContext context) throws Exception {
        predictor = Predictor.open(model, context);
    }

    @Override
    public CompletableFuture<Collection<RowData>> asyncPredict(RowData input) {
        return predictor.predict(input);
    }

    @Override
    public void close() throws Exception {
        if (predictor != null) {
            predictor.close();
            predictor = null;
        }
    }
}
