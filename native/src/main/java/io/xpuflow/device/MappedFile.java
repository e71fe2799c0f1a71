package io.xpuflow.device;

import io.xpuflow.nativebind.XpuNative;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import org.bytedeco.javacpp.BytePointer;

/**
 * A read-only memory mapping of a whole file (weights), made by the native side so that files over
 * 2 GiB map in one piece and unmap deterministically on {@link #close()}. Addresses handed out are
 * valid until then; never close while a native call that reads them may be in flight.
 */
public final class MappedFile implements AutoCloseable {
    private final Path path;
    private final long size;
    private long address;

    private MappedFile(Path path, long address, long size) {
        this.path = path;
        this.address = address;
        this.size = size;
    }

    /** Maps {@code path}; fails with a {@link DeviceException} naming the file if it cannot be read. */
    public static MappedFile map(Path path) {
        long[] addr = new long[1];
        long[] size = new long[1];
        Native.check(XpuNative.xpu_map_file(path.toString(), addr, size), "xpu_map_file");
        return new MappedFile(path, addr[0], size[0]);
    }

    public Path path() {
        return path;
    }

    public long size() {
        return size;
    }

    /** Address of the first byte. */
    public synchronized long address() {
        if (address == 0) {
            throw new IllegalStateException("mapping of " + path + " is closed");
        }
        return address;
    }

    /** Address of byte {@code offset}, checked against the mapping's size for {@code length} bytes. */
    public long address(long offset, long length) {
        if (offset < 0 || length < 0 || offset > size - length) {
            throw new IndexOutOfBoundsException(
                    "bytes [" + offset + ", " + (offset + length) + ") outside " + path + " of " + size + " bytes");
        }
        return address() + offset;
    }

    /**
     * A read-only little-endian view of {@code length} bytes at {@code offset} (at most 2 GiB), without
     * copying. The view must not be used after {@link #close()}.
     */
    public ByteBuffer slice(long offset, long length) {
        if (length > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a view is limited to 2 GiB, asked for " + length + " bytes of " + path);
        }
        long start = address(offset, length);
        BytePointer view = new AddressView(start, length);
        return view.asByteBuffer().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * A non-owning JavaCPP pointer over mapped memory (never deallocated by JavaCPP). A BytePointer so
     * that limit and capacity count bytes: a plain Pointer counts 8-byte elements.
     */
    private static final class AddressView extends BytePointer {
        AddressView(long address, long length) {
            this.address = address;
            this.position = 0;
            this.limit = length;
            this.capacity = length;
        }
    }

    @Override
    public synchronized void close() {
        if (address != 0) {
            long a = address;
            address = 0;
            Native.check(XpuNative.xpu_unmap_file(a, size), "xpu_unmap_file");
        }
    }
}
