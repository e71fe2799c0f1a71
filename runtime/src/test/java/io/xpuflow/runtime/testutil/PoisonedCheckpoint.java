package io.xpuflow.runtime.testutil;

import io.xpuflow.runtime.checkpoint.DType;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint;
import io.xpuflow.runtime.checkpoint.SafetensorsFile;
import io.xpuflow.runtime.checkpoint.SafetensorsWriter;
import io.xpuflow.runtime.checkpoint.TensorInfo;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A small random Llama checkpoint (F32, no tokenizer) whose embedding rows of some token ids are NaN: a
 * sequence holding one of them gets NaN hidden states, so NaN logits, while sequences without them run
 * normally — a model fault confined to some requests, as a corrupt weight row or an overflow would be.
 */
public final class PoisonedCheckpoint {
    public static final int VOCAB = 128;
    /** Its end-of-sequence id (what {@link RandomCheckpoint} writes: the last id). */
    public static final int EOS = VOCAB - 1;

    private PoisonedCheckpoint() {}

    /** Writes {@code parent/nan-embed} with NaN embeddings for {@code poisonedIds} and returns the directory. */
    public static Path write(Path parent, int... poisonedIds) {
        Path dir = RandomCheckpoint.write(parent, RandomCheckpoint.Spec.of("nan-embed", RandomCheckpoint.Arch.LLAMA)
                .vocab(VOCAB).hidden(64).layers(2).dtype(DType.F32).seed(7));
        Path file = dir.resolve("model.safetensors");
        Map<String, TensorInfo> infos = new LinkedHashMap<>();
        Map<String, byte[]> bytes = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (TensorInfo t : f.tensors().values()) {
                ByteBuffer data = f.data(t);
                byte[] b = new byte[data.remaining()];
                data.get(b);
                infos.put(t.name(), t);
                bytes.put(t.name(), b);
            }
        }
        String embed = "model.embed_tokens.weight";
        TensorInfo e = infos.get(embed);
        if (e == null || e.dtype() != DType.F32) {
            throw new IllegalStateException("expected an F32 " + embed + " in " + file + ", got " + e);
        }
        int hidden = Math.toIntExact(e.shape()[1]);
        ByteBuffer rows = ByteBuffer.wrap(bytes.get(embed)).order(ByteOrder.LITTLE_ENDIAN);
        for (int id : poisonedIds) {
            for (int c = 0; c < hidden; c++) {
                rows.putFloat((id * hidden + c) * 4, Float.NaN);
            }
        }
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        infos.forEach((name, t) -> w.addRaw(name, t.dtype(), bytes.get(name), t.shape()));
        w.write(file);
        return dir;
    }
}
