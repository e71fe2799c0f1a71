package io.xpuflow.cli;

import io.xpuflow.runtime.checkpoint.Checkpoint;
import io.xpuflow.runtime.checkpoint.DType;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Plan;
import io.xpuflow.runtime.checkpoint.RandomCheckpoint.Spec;
import io.xpuflow.runtime.checkpoint.RandomPreset;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code xpuflow init-random}: a checkpoint directory of random weights in the layout of a named preset. */
@Command(name = "init-random",
        description = {"Write a random-weight checkpoint of a preset, for benchmarks and tests.",
                "Writes DIR/model.safetensors and DIR/config.json (loadable by score and generate), then prints each file "
                        + "written, the exact parameter counts (active: everything but the routed experts a token does "
                        + "not select) and a summary line."})
final class InitRandomCommand implements Callable<Integer> {
    @Mixin
    XpuFlowCli.Basic common = new XpuFlowCli.Basic();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--preset", required = true, paramLabel = "NAME", description = "One of the presets below.")
    String preset;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Directory to write (created if missing; must be empty unless --force).")
    Path out;

    @Option(names = "--seed", defaultValue = "1", paramLabel = "N", description = "Random seed (default ${DEFAULT-VALUE}); the same seed writes the same bytes.")
    long seed;

    @Option(names = "--dtype", defaultValue = "bf16", paramLabel = "TYPE", description = "Weight type: bf16 (default) or f32.")
    String dtype;

    @Option(names = "--mtp-layers", paramLabel = "N",
            description = "MTP (multi-token prediction) layers to add, MiMo presets only (default: the preset's; 1 for"
                    + " mimo-v2-bench, 0 otherwise).")
    Integer mtpLayers;

    @Mixin
    Progress.Options progress = new Progress.Options();

    @Option(names = "--force", description = "Write into a non-empty DIR: replace config.json and model.safetensors and delete other *.safetensors files and the shard index there.")
    boolean force;

    @Override
    public Integer call() throws IOException {
        RandomPreset p = RandomPreset.byId(preset).orElseThrow(() -> new CommandLine.ParameterException(spec.commandLine(),
                "unknown preset '" + preset + "' (presets: " + RandomPreset.ids() + ")"));
        DType type = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "bf16" -> DType.BF16;
            case "f32" -> DType.F32;
            default -> throw new CommandLine.ParameterException(spec.commandLine(),
                    "--dtype must be bf16 or f32, was '" + dtype + "'");
        };
        Spec s = p.spec(seed, type);
        if (mtpLayers != null) {
            if (mtpLayers < 0) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--mtp-layers must be >= 0, was " + mtpLayers);
            }
            if (mtpLayers > 0 && s.arch != RandomCheckpoint.Arch.MIMO) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--mtp-layers: preset " + p.id() + " is "
                        + s.arch.hfName() + ", which has no MTP layers; only the MiMo presets take them");
            }
            s.mtp(mtpLayers);
        }
        prepare(out);
        long started = System.nanoTime();
        RandomCheckpoint.Written w;
        // the weights are streamed into model.safetensors.partial, renamed once complete: its size is the progress
        Path partial = out.resolve(Checkpoint.SINGLE_FILE + ".partial");
        Path weights = out.resolve(Checkpoint.SINGLE_FILE);
        try (Progress shown = Progress.bytes(spec.commandLine().getErr(), progress.mode(), "Writing " + p.id() + " tensors",
                RandomCheckpoint.plan(s).fileSize(), () -> sizeOf(partial, sizeOf(weights, 0)))) {
            w = RandomCheckpoint.writeInto(out, s);
        }
        double seconds = (System.nanoTime() - started) / 1e9;
        Plan plan = w.plan();
        PrintWriter o = spec.commandLine().getOut();
        for (Path f : w.files()) {
            o.printf(Locale.ROOT, "wrote %s (%s)%n", f, bytes(Files.size(f)));
        }
        o.printf(Locale.ROOT, "%d tensors, %,d parameters, %,d active per token, %s in %.1f s%n", plan.tensors().size(),
                plan.parameters(), plan.activeParameters(), s.dtype, seconds);
        o.printf(Locale.ROOT, "Wrote %s to %s: %s parameters (%s active), %s%n", p.id(), out, count(plan.parameters()),
                count(plan.activeParameters()), bytes(plan.fileSize()));
        return 0;
    }

    /** The size of {@code file}, {@code otherwise} when there is none. */
    private static long sizeOf(Path file, long otherwise) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            return otherwise;
        }
    }

    /** Lists the presets under the options of {@code init-random --help}. */
    static void describePresets(CommandLine command) {
        StringBuilder footer = new StringBuilder("%nPresets:%n");
        for (RandomPreset p : RandomPreset.values()) {
            StringBuilder line = new StringBuilder(String.format("  %-14s", p.id()));
            for (String word : p.description().split(" ")) {
                if (line.length() + 1 + word.length() > 79) {
                    footer.append(line).append("%n");
                    line = new StringBuilder(" ".repeat(16));
                }
                line.append(' ').append(word);
            }
            footer.append(line).append("%n");
        }
        command.getCommandSpec().usageMessage().footer(footer.toString());
    }

    /** Refuses a non-empty directory unless --force, which clears the weights a loader could pick up instead. */
    private void prepare(Path dir) throws IOException {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new IllegalArgumentException(dir + " exists and is not a directory");
        }
        if (!Files.isDirectory(dir)) {
            return;
        }
        boolean empty;
        try (Stream<Path> entries = Files.list(dir)) {
            empty = entries.findAny().isEmpty();
        }
        if (empty) {
            return;
        }
        if (!force) {
            throw new IllegalStateException(dir + " is not empty; choose an empty directory or pass --force to replace "
                    + "its checkpoint");
        }
        try (DirectoryStream<Path> stale = Files.newDirectoryStream(dir, "{*.safetensors," + Checkpoint.INDEX_FILE + "}")) {
            for (Path f : stale) {
                Files.delete(f);
            }
        }
    }

    /** 1.01B, 158M, 25.3K: three significant digits. */
    static String count(long n) {
        if (n >= 1_000_000_000L) {
            return String.format(Locale.ROOT, "%.2fB", n / 1e9);
        }
        if (n >= 1_000_000L) {
            return String.format(Locale.ROOT, n >= 100_000_000L ? "%.0fM" : n >= 10_000_000L ? "%.1fM" : "%.2fM", n / 1e6);
        }
        if (n >= 1_000L) {
            return String.format(Locale.ROOT, "%.1fK", n / 1e3);
        }
        return Long.toString(n);
    }

    /** Decimal units, as disk sizes are quoted: 2.03 GB, 3.2 MB. */
    static String bytes(long n) {
        if (n >= 1_000_000_000L) {
            return String.format(Locale.ROOT, "%.2f GB", n / 1e9);
        }
        if (n >= 1_000_000L) {
            return String.format(Locale.ROOT, "%.1f MB", n / 1e6);
        }
        if (n >= 1_000L) {
            return String.format(Locale.ROOT, "%.1f kB", n / 1e3);
        }
        return n + " B";
    }
}
