package io.xpuflow.connector.sql;

import io.xpuflow.connector.options.OptionReaders;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.ModelProviderFactory;
import org.apache.flink.table.ml.ModelProvider;

/**
 * The {@code xpuflow} model provider: runs a local checkpoint on the TaskManagers' shared engine.
 *
 * <pre>{@code
 * CREATE MODEL story
 *   INPUT (prompt STRING)
 *   OUTPUT (completion STRING, finish_reason STRING, prompt_tokens INT, completion_tokens INT)
 *   WITH ('provider' = 'xpuflow', 'model-path' = '/models/stories260k', 'max-tokens' = '32');
 *
 * SELECT id, completion FROM ML_PREDICT(TABLE prompts, MODEL story, DESCRIPTOR(prompt));
 * }</pre>
 *
 * <p>Options: {@link XpuFlowOptions}; schema rules: {@link ModelColumns}; behaviour per row:
 * {@link Predictor}. Found by Flink through {@code META-INF/services/org.apache.flink.table.factories.Factory}.
 * All checks happen here, when the query is planned, so a wrong option or schema fails the statement on
 * the client instead of a running job.
 */
public final class XpuFlowModelProviderFactory implements ModelProviderFactory {
    public static final String IDENTIFIER = "xpuflow";

    /** Keys of a model's options that are Flink's, not ours ({@code 'provider' = 'xpuflow'}). */
    private static final Set<String> FRAMEWORK_KEYS = Set.of(FactoryUtil.PROVIDER.key(), "task");

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(XpuFlowOptions.MODEL_PATH);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        Set<ConfigOption<?>> options = new HashSet<>(XpuFlowOptions.ENGINE_OPTIONS);
        options.addAll(XpuFlowOptions.SAMPLING_OPTIONS);
        return options;
    }

    @Override
    public ModelProvider createModelProvider(Context context) {
        FactoryUtil.ModelProviderFactoryHelper helper = FactoryUtil.createModelProviderFactoryHelper(this, context);
        String model = context.getObjectIdentifier().asSummaryString();
        List<String> keys = XpuFlowOptions.keys();
        for (String key : context.getCatalogModel().getOptions().keySet()) {
            if (!keys.contains(key) && !FRAMEWORK_KEYS.contains(key)) {
                // as every other surface: the nearest known name (Flink's own message lists all of them)
                throw new ValidationException("Invalid option of model '" + model + "': "
                        + OptionReaders.unknown("option", key, keys));
            }
        }
        helper.validate(); // required options
        ReadableConfig options = helper.getOptions();
        XpuFlowOptions.OptionNames names = XpuFlowOptions.OptionNames.ofModel(model);
        return new XpuFlowModelProvider(model, XpuFlowOptions.engineSpec(options, names),
                XpuFlowOptions.samplingDefaults(options, names), ModelColumns.of(context.getCatalogModel(), model));
    }
}
