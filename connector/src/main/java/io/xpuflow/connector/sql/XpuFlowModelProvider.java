package io.xpuflow.connector.sql;

import io.xpuflow.connector.records.SamplingDefaults;
import io.xpuflow.operators.EngineSpec;
import java.io.Serializable;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.functions.PredictFunction;
import org.apache.flink.table.ml.AsyncPredictRuntimeProvider;
import org.apache.flink.table.ml.ModelProvider;
import org.apache.flink.table.ml.PredictRuntimeProvider;

/**
 * An {@code xpuflow} model as the planner sees it: validated engine settings, sampling defaults and
 * output columns, from which it makes the predict functions that run on the TaskManagers.
 *
 * @param modelName the model's identifier, for messages and logs
 */
public record XpuFlowModelProvider(String modelName, EngineSpec engine, SamplingDefaults sampling,
                                   ModelColumns columns)
        implements AsyncPredictRuntimeProvider, PredictRuntimeProvider, Serializable {

    @Override
    public AsyncPredictFunction createAsyncPredictFunction(ModelProvider.Context context) {
        return new XpuFlowAsyncPredictFunction(this);
    }

    @Override
    public PredictFunction createPredictFunction(ModelProvider.Context context) {
        return new XpuFlowPredictFunction(this);
    }

    @Override
    public ModelProvider copy() {
        return this; // immutable
    }
}
