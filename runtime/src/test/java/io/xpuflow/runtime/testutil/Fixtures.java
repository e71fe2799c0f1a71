package io.xpuflow.runtime.testutil;

import io.xpuflow.runtime.checkpoint.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The golden checkpoints under the repository's {@code fixtures/} (from an independent FP32 reference). */
public final class Fixtures {
    private Fixtures() {}

    public static Path root() {
        String p = System.getProperty("xpuflow.fixtures");
        Path dir = p != null ? Path.of(p) : Path.of("..", "fixtures");
        if (!Files.isDirectory(dir)) {
            throw new IllegalStateException("fixtures not found at " + dir.toAbsolutePath());
        }
        return dir;
    }

    public static Path model(String name) {
        return root().resolve(name);
    }

    /** One golden prompt of a fixture. */
    public record GoldenPrompt(int index, int[] ids, float[] logits, int[] greedy, float[] margins, long[] experts,
                               float[] mtpLogits, float[] mtp1Logits) {}

    /** Reads every prompt of {@code name}/golden.safetensors. */
    public static List<GoldenPrompt> golden(String name) {
        List<GoldenPrompt> out = new ArrayList<>();
        try (SafetensorsFile f = SafetensorsFile.open(model(name).resolve("golden.safetensors"))) {
            for (int i = 0; f.find("p" + i + ".ids").isPresent(); i++) {
                String p = "p" + i + ".";
                out.add(new GoldenPrompt(i, toInts(f.readLongs(p + "ids")), f.readFloats(p + "logits"),
                        toInts(f.readLongs(p + "greedy")), f.readFloats(p + "margins"),
                        f.find(p + "experts").isPresent() ? f.readLongs(p + "experts") : null,
                        f.find(p + "mtp_logits").isPresent() ? f.readFloats(p + "mtp_logits") : null,
                        f.find(p + "mtp1_logits").isPresent() ? f.readFloats(p + "mtp1_logits") : null));
            }
        }
        return out;
    }

    public static int[] toInts(long[] v) {
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = Math.toIntExact(v[i]);
        }
        return out;
    }
}
