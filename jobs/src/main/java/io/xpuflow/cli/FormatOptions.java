package io.xpuflow.cli;

import io.xpuflow.connector.options.OptionReaders;
import io.xpuflow.device.KvCacheDtype;
import io.xpuflow.device.WeightFormat;
import io.xpuflow.operators.EngineSpec;
import io.xpuflow.runtime.engine.EngineOptionDefs;
import io.xpuflow.runtime.engine.EngineOptions;
import io.xpuflow.runtime.model.LoadOptions;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * {@code --weight-format} and {@code --kv-cache-dtype} of the commands that load a model without an engine
 * ({@code score}, {@code demo}); commands with an engine generate them from {@link EngineOptionDefs} (see
 * {@link EngineArgs}). The values are checked by the definitions' rule and parsed by {@link WeightFormat#parseOrAuto} and {@link KvCacheDtype#parseOrAuto}; {@code null}
 * fields mean {@code auto} (the loader's choice, see
 * {@link io.xpuflow.runtime.model.LoadedModel#defaultWeightFormat}). Public for {@code KafkaInferenceJob},
 * which takes the same flags.
 */
public final class FormatOptions {
    @Option(names = "--weight-format", paramLabel = "FORMAT", defaultValue = WeightFormat.AUTO,
            converter = WeightFormatConverter.class,
            description = "What matrix products compute in: auto (default: bf16 for BF16 and FP8 checkpoints, exact"
                    + " otherwise), exact (FP32, the reference), bf16 or int8.")
    WeightFormat weightFormat;

    @Option(names = "--kv-cache-dtype", paramLabel = "DTYPE", defaultValue = WeightFormat.AUTO,
            converter = KvCacheDtypeConverter.class,
            description = "Element type of the KV cache: auto (default: f32 with exact weights, bf16 otherwise), f32"
                    + " or bf16.")
    KvCacheDtype kvCacheDtype;

    /** The weight format asked for; {@code null}: auto. */
    public WeightFormat weightFormat() {
        return weightFormat;
    }

    /** The KV cache dtype asked for; {@code null}: auto. */
    public KvCacheDtype kvCacheDtype() {
        return kvCacheDtype;
    }

    LoadOptions applyTo(LoadOptions options) {
        return options.withWeightFormat(weightFormat).withKvCacheDtype(kvCacheDtype);
    }

    EngineOptions.Builder applyTo(EngineOptions.Builder builder) {
        return builder.weightFormat(weightFormat).kvCacheDtype(kvCacheDtype);
    }

    public EngineSpec applyTo(EngineSpec spec) {
        return spec.withWeightFormat(weightFormat).withKvCacheDtype(kvCacheDtype);
    }

    /** {@code auto} → {@code null}; a bad value is a usage error naming the accepted values. */
    public static final class WeightFormatConverter implements CommandLine.ITypeConverter<WeightFormat> {
        @Override
        public WeightFormat convert(String value) {
            try {
                return WeightFormat.parseOrAuto(OptionReaders.fromText(EngineOptionDefs.WEIGHT_FORMAT, value,
                        EngineOptionDefs.WEIGHT_FORMAT.flag()));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    /** {@code auto} → {@code null}; a bad value is a usage error naming the accepted values. */
    public static final class KvCacheDtypeConverter implements CommandLine.ITypeConverter<KvCacheDtype> {
        @Override
        public KvCacheDtype convert(String value) {
            try {
                return KvCacheDtype.parseOrAuto(OptionReaders.fromText(EngineOptionDefs.KV_CACHE_DTYPE, value,
                        EngineOptionDefs.KV_CACHE_DTYPE.flag()));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
