package io.xpuflow.device;

import io.xpuflow.nativebind.XpuNative;

/**
 * The paged KV memory of one model on its device: per KV group a pool of blocks of
 * {@link #blockSize()} tokens. Which sequence owns which block is decided above the device.
 */
public final class KvCache implements AutoCloseable {
    private final DeviceModel model;
    private final int blockSize;
    private final long[] numBlocks;
    private long handle;

    KvCache(DeviceModel model, long handle, int blockSize, long[] numBlocks) {
        this.model = model;
        this.handle = handle;
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
    }

    public DeviceModel model() {
        return model;
    }

    public int blockSize() {
        return blockSize;
    }

    public int numGroups() {
        return numBlocks.length;
    }

    public long numBlocks(int group) {
        return numBlocks[group];
    }

    synchronized long handle() {
        if (handle == 0) {
            throw new IllegalStateException("KV cache is closed");
        }
        return handle;
    }

    @Override
    public synchronized void close() {
        if (handle != 0) {
            long h = handle;
            handle = 0;
            Native.check(XpuNative.xpu_kv_free(h), "xpu_kv_free");
        }
    }
}
