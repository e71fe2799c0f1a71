package io.xpuflow.runtime.config;

import io.xpuflow.device.TensorRole;
import java.util.Set;

/**
 * Translates one family of Hugging Face checkpoints into the engine's terms: {@code config.json}
 * into a {@link ModelConfig}, and weight roles into the family's tensor names.
 */
public interface ArchitectureAdapter {

    /** The {@code architectures} names this adapter reads. */
    Set<String> architectures();

    /** Reads and checks the configuration; MTP layers are added by the loader once it sees the checkpoint. */
    ModelConfig parse(ConfigReader config);

    /**
     * Checkpoint name of the weight with this role, or null if this model has no such tensor.
     * Layers at {@code numLayers} and beyond are MTP layers.
     */
    String tensorName(ModelConfig config, TensorRole role, int layer, int expert);

    /**
     * MTP layers this checkpoint ships, as far as its config or tensor names tell
     * ({@code hasTensor} answers whether a name is in the checkpoint). Default: none.
     */
    default int countMtpLayers(ConfigReader config, java.util.function.Predicate<String> hasTensor) {
        return 0;
    }

    /** The attention and FFN of MTP layer {@code index}; only called when {@link #countMtpLayers} is positive. */
    default ModelConfig.LayerConfig mtpLayer(ConfigReader config, ModelConfig model, int index) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " has no MTP layers");
    }
}
