package io.xpuflow.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.bytedeco.javacpp.Pointer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java face of the device: a tiny one-layer model built from F32 weights in direct buffers.
 * Misuse and malformed batches must surface as exceptions naming the problem, never as a crash.
 */
class DeviceTest {
    static final int VOCAB = 16;
    static final int HIDDEN = 8;
    static final int HEADS = 2;
    static final int HEAD_DIM = 4;
    static final int INTER = 12;

    private final List<ByteBuffer> keepAlive = new ArrayList<>();
    private final Random random = new Random(7);
    private Device device;

    @BeforeEach
    void open() {
        device = Device.open("cpu", 2);
    }

    @AfterEach
    void close() {
        device.close();
    }

    private WeightView weight(long rows, long cols) {
        ByteBuffer b = ByteBuffer.allocateDirect((int) (rows * cols * 4)).order(ByteOrder.nativeOrder());
        for (int i = 0; i < rows * cols; i++) {
            b.putFloat(i * 4, (float) (random.nextGaussian() / Math.sqrt(cols)));
        }
        keepAlive.add(b);
        return WeightView.plain(new Pointer(b).address(), WeightView.F32, rows, cols);
    }

    private DeviceModel model(boolean complete) {
        DeviceModel m = DeviceModel.create(device, new ModelParams(VOCAB, HIDDEN, 1, 0, 1, 8, 2, 1e-5));
        m.setLayer(0, new LayerParams(false, 0, HEADS, HEADS, HEAD_DIM, HEAD_DIM, HEAD_DIM, false, false, false, 0,
                false, INTER, 0, 0, 0, false, 1, 1, false, false, 0, false, 0.5, 1.0, 1.0));
        m.setRope(0, new float[] {1.0f, 0.01f});
        m.setTensor(TensorRole.EMBED, -1, -1, weight(VOCAB, HIDDEN));
        m.setTensor(TensorRole.LM_HEAD, -1, -1, weight(VOCAB, HIDDEN));
        m.setTensor(TensorRole.FINAL_NORM, -1, -1, weight(1, HIDDEN));
        m.setTensor(TensorRole.ATTN_NORM, 0, -1, weight(1, HIDDEN));
        m.setTensor(TensorRole.FFN_NORM, 0, -1, weight(1, HIDDEN));
        m.setTensor(TensorRole.Q, 0, -1, weight(HEADS * HEAD_DIM, HIDDEN));
        m.setTensor(TensorRole.K, 0, -1, weight(HEADS * HEAD_DIM, HIDDEN));
        m.setTensor(TensorRole.V, 0, -1, weight(HEADS * HEAD_DIM, HIDDEN));
        m.setTensor(TensorRole.O, 0, -1, weight(HIDDEN, HEADS * HEAD_DIM));
        m.setTensor(TensorRole.GATE, 0, -1, weight(INTER, HIDDEN));
        m.setTensor(TensorRole.UP, 0, -1, weight(INTER, HIDDEN));
        if (complete) {
            m.setTensor(TensorRole.DOWN, 0, -1, weight(HIDDEN, INTER));
            m.finish();
        }
        return m;
    }

    private static StepBatch.Capacity capacity() {
        return new StepBatch.Capacity(8, 2, 4, 8, 0, false, true);
    }

    @Test
    void reportsItsInstructionSet() {
        assertThat(Devices.cpuIsa()).isIn("avx512bf16", "avx512", "avx2", "scalar");
        assertThatThrownBy(() -> Devices.forceCpuIsa("sse9")).isInstanceOf(DeviceException.class).hasMessageContaining("sse9");
    }

    @Test
    void unknownDeviceKindIsRefused() {
        assertThatThrownBy(() -> Device.open("tpu", 1)).isInstanceOf(DeviceException.class)
                .hasMessageContainingAll("tpu", "cpu");
    }

    @Test
    void threadCountIsResolvedByTheCallerNotByTheNativeSide() {
        // the native side cannot know a container's or a Flink slot's share of the cores
        long[] out = new long[1];
        assertThat(io.xpuflow.nativebind.XpuNative.xpu_device_open("cpu", 0, out)).isNotZero();
        assertThat(io.xpuflow.nativebind.XpuNative.xpu_last_error()).contains("num_threads 0");
        try (Device all = Device.open("cpu", 0)) {
            assertThat(all.threads()).isEqualTo(Runtime.getRuntime().availableProcessors());
        }
    }

    @Test
    void weightsAreCopiedSoTheCallersMemoryMayChangeAfterRegistration() {
        int[] tokens = {3, 5, 7};
        float[] before;
        float[] after;
        try (DeviceModel m = model(true); KvCache kv = m.createKvCache(4, new long[] {8})) {
            before = logits(m, kv, tokens);
            // what the caller registered (a mapping, in a real load) is overwritten: the model must not notice
            for (ByteBuffer b : keepAlive) {
                for (int i = 0; i < b.capacity(); i += 4) {
                    b.putFloat(i, Float.NaN);
                }
            }
            after = logits(m, kv, tokens);
            assertThat(m.weightBytes()).isEqualTo(4L * (2 * VOCAB * HIDDEN + 3 * HIDDEN + 4 * HEADS * HEAD_DIM * HIDDEN
                    + 3 * INTER * HIDDEN));
        }
        assertThat(after).containsExactly(before);
    }

    private static float[] logits(DeviceModel m, KvCache kv, int[] tokens) {
        StepBatch b = m.newBatch(capacity());
        b.addSequence(tokens, 0, tokens.length, 0, new int[][] {{0}});
        b.requestLogits(tokens.length - 1);
        m.step(kv, b);
        float[] out = new float[VOCAB];
        b.copyLogits(0, out);
        return out;
    }

    @Test
    void finishNamesAMissingWeight() {
        try (DeviceModel m = model(false)) {
            assertThatThrownBy(m::finish).isInstanceOf(DeviceException.class).hasMessageContainingAll("layer 0", "down");
        }
    }

    @Test
    void aWeightOfTheWrongShapeIsNamed() {
        try (DeviceModel m = model(false)) {
            m.setTensor(TensorRole.DOWN, 0, -1, weight(HIDDEN, INTER + 1));
            assertThatThrownBy(m::finish).isInstanceOf(DeviceException.class)
                    .hasMessageContainingAll("down", "[8, 13]", "[8, 12]");
        }
    }

    @Test
    void aStepGivesTheSameLogitsForARowAloneAndInABatch() {
        try (DeviceModel m = model(true); KvCache kv = m.createKvCache(4, new long[] {8})) {
            StepBatch b = m.newBatch(capacity());
            int[] a = {3, 5, 7};
            b.addSequence(a, 0, 3, 0, new int[][] {{0}});
            b.requestLogits(2);
            m.step(kv, b);
            float[] alone = new float[VOCAB];
            b.copyLogits(0, alone);

            b.clear();
            int[] other = {1, 2, 3, 4, 9};
            b.addSequence(other, 0, 5, 0, new int[][] {{1, 2}});
            int row = b.addSequence(a, 0, 3, 0, new int[][] {{3}});
            b.requestLogits(row + 2);
            m.step(kv, b);
            float[] batched = new float[VOCAB];
            b.copyLogits(0, batched);
            assertThat(batched).containsExactly(alone);
        }
    }

    @Test
    void theProfilerRecordsEveryOpOfAStepOnlyWhileItIsOn() {
        try (DeviceModel m = model(true); KvCache kv = m.createKvCache(4, new long[] {8})) {
            StepBatch b = m.newBatch(capacity());
            b.addSequence(new int[] {3, 5, 7}, 0, 3, 0, new int[][] {{0}});
            b.requestLogits(2);
            m.step(kv, b);
            assertThat(m.readTrace().events()).as("off by default").isEmpty();

            m.trace(1000);
            m.step(kv, b);
            TraceEvents t = m.readTrace();
            assertThat(t.dropped()).isZero();
            List<TraceEvent> ops = t.events().stream().filter(e -> e.thread() == -1).toList();
            assertThat(ops).extracting(TraceEvent::op).contains(TraceEvent.Op.STEP, TraceEvent.Op.EMBED,
                    TraceEvent.Op.QKV, TraceEvent.Op.ATTENTION, TraceEvent.Op.O_PROJ, TraceEvent.Op.FFN,
                    TraceEvent.Op.LM_HEAD);
            TraceEvent step = ops.stream().filter(e -> e.op() == TraceEvent.Op.STEP).findFirst().orElseThrow();
            for (TraceEvent e : t.events()) {
                assertThat(e.startNs()).as("%s inside the step", e).isBetween(step.startNs(), step.endNs());
                assertThat(e.endNs()).isBetween(e.startNs(), step.endNs());
            }
            TraceEvent qkv = ops.stream().filter(e -> e.op() == TraceEvent.Op.QKV).findFirst().orElseThrow();
            // q, k and v: [HEADS * HEAD_DIM, HIDDEN] each, F32, for 3 rows
            assertThat(qkv.bytes()).isEqualTo(3L * HEADS * HEAD_DIM * HIDDEN * 4);
            assertThat(qkv.flops()).isEqualTo(2L * 3 * 3 * HEADS * HEAD_DIM * HIDDEN);
            assertThat(qkv.rows()).isEqualTo(3);
            assertThat(t.events()).as("per-thread records of the sections").anyMatch(e -> e.thread() == 0);

            m.trace(2);
            m.step(kv, b);
            TraceEvents full = m.readTrace();
            assertThat(full.events()).hasSize(2);
            assertThat(full.dropped()).isPositive();

            m.trace(0);
            m.step(kv, b);
            assertThat(m.readTrace().events()).isEmpty();
        }
    }

    @Test
    void malformedBatchesAreRejectedWithoutCrashing() {
        try (DeviceModel m = model(true); KvCache kv = m.createKvCache(4, new long[] {8})) {
            StepBatch b = m.newBatch(capacity());
            assertThatThrownBy(() -> m.step(kv, b)).isInstanceOf(IllegalStateException.class).hasMessageContaining("empty");

            b.addSequence(new int[] {1, VOCAB}, 0, 2, 0, new int[][] {{0}});
            assertThatThrownBy(() -> m.step(kv, b)).isInstanceOf(DeviceException.class).hasMessageContaining("token id 16");

            b.clear();
            b.addSequence(new int[] {1, 2}, 0, 2, 0, new int[][] {{8}});
            assertThatThrownBy(() -> m.step(kv, b)).isInstanceOf(IndexOutOfBoundsException.class)
                    .hasMessageContaining("block 8");

            b.clear();
            b.addSequence(new int[] {1, 2}, 0, 2, 3, new int[][] {{0}}); // positions 3, 4: block slot 1 missing
            assertThatThrownBy(() -> m.step(kv, b)).isInstanceOf(DeviceException.class)
                    .hasMessageContainingAll("block slot 1", "holds block -1");

            b.clear();
            assertThatThrownBy(() -> b.addSequence(new int[9], 0, 9, 0, new int[][] {{0, 1, 2}}))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("capacity 8");
            assertThatThrownBy(() -> b.requestLogits(0)).isInstanceOf(IndexOutOfBoundsException.class);

            // the model still works after every refusal
            b.clear();
            b.addSequence(new int[] {1, 2}, 0, 2, 0, new int[][] {{0}});
            b.requestLogits(1);
            m.step(kv, b);
            assertThat(b.argmax(0)).isBetween(0, VOCAB - 1);
        }
    }

    @Test
    void closedHandlesRefuseUse() {
        DeviceModel m = model(true);
        KvCache kv = m.createKvCache(4, new long[] {8});
        StepBatch b = m.newBatch(capacity());
        b.addSequence(new int[] {1}, 0, 1, 0, new int[][] {{0}});
        kv.close();
        kv.close();
        assertThatThrownBy(() -> m.step(kv, b)).isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
        m.close();
        m.close();
        assertThatThrownBy(m::finish).isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
    }

    @Test
    void mappedFilesGiveExactViewsAndNameMissingFiles(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("w.bin");
        Files.write(f, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
        try (MappedFile m = MappedFile.map(f)) {
            assertThat(m.size()).isEqualTo(12);
            ByteBuffer view = m.slice(4, 5);
            assertThat(view.remaining()).isEqualTo(5);
            assertThat(view.get(0)).isEqualTo((byte) 5);
            assertThatThrownBy(() -> m.address(10, 3)).isInstanceOf(IndexOutOfBoundsException.class)
                    .hasMessageContaining("w.bin");
        }
        assertThatThrownBy(() -> MappedFile.map(tmp.resolve("nope.bin"))).isInstanceOf(DeviceException.class)
                .hasMessageContaining("nope.bin");
    }
}
