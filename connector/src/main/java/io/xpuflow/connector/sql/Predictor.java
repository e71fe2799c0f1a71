package io.xpuflow.connector.sql;

import io.xpuflow.operators.ErrorCode;
import io.xpuflow.operators.GenerationFailure;
import io.xpuflow.runtime.sample.SamplingParams;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.functions.FunctionContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the async and the sync predict functions of an {@code xpuflow} model share: one input row (the
 * prompt) in, one output row out. A row the engine cannot serve (prompt too long for the context, NULL
 * prompt, an engine failure) becomes an output row with a NULL completion and, where the OUTPUT schema
 * has them, {@code finish_reason = 'error: CODE'} and the message in {@code error}; it is logged at
 * WARN. The job goes on: one bad row must not stop a stream (and restarting would meet it again).
 */
final class Predictor implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Predictor.class);

    private final XpuFlowModelProvider model;
    private final EngineClient client;
    private final SamplingParams sampling;

    private Predictor(XpuFlowModelProvider model, EngineClient client) {
        this.model = model;
        this.client = client;
        this.sampling = model.sampling().toParams();
    }

    static Predictor open(XpuFlowModelProvider model, FunctionContext context) {
        return new Predictor(model, EngineClient.open(model.engine(),
                "option '" + XpuFlowOptions.MODEL_PATH.key() + "' of model '" + model.modelName() + "'",
                context.getMetricGroup()));
    }

    CompletableFuture<Collection<RowData>> predict(RowData input) {
        if (input.isNullAt(0)) {
            client.rowError(ErrorCode.MISSING_FIELD);
            return CompletableFuture.completedFuture(error(ErrorCode.MISSING_FIELD, "the prompt is NULL"));
        }
        String prompt = input.getString(0).toString();
        return client.generate(prompt, sampling).handle((result, e) -> {
            if (e == null) {
                return List.of(model.columns().toRow(result));
            }
            GenerationFailure f = GenerationFailure.of(e);
            return error(f.code(), f.message());
        });
    }

    private List<RowData> error(ErrorCode code, String message) {
        LOG.warn("Model {}: a row got no completion ({}): {}", model.modelName(), code, message);
        return List.of(model.columns().errorRow(code, message));
    }

    @Override
    public void close() {
        client.close();
    }
}
