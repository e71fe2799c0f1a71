package io.xpuflow.device;

import io.xpuflow.nativebind.XpuNative;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.bytedeco.javacpp.Pointer;

/**
 * A C parameter block of the device ABI made of 8-byte fields, held in a direct buffer so Java can
 * fill it at memory speed and pass its address. The field order is the enum's declaration order,
 * which must match the C struct; the constructor checks the size against the library.
 */
final class NativeStruct<F extends Enum<F>> {
    private final ByteBuffer buffer;
    private final long address;

    NativeStruct(String abiName, Class<F> fields) {
        int count = fields.getEnumConstants().length;
        long nativeSize = XpuNative.xpu_abi_struct_size(abiName);
        if (nativeSize != count * 8L) {
            throw new IllegalStateException("ABI mismatch for " + abiName + ": Java has " + count
                    + " fields (" + count * 8 + " bytes), the native library " + nativeSize + " bytes");
        }
        buffer = ByteBuffer.allocateDirect(count * 8).order(ByteOrder.nativeOrder());
        address = new Pointer(buffer).address();
    }

    NativeStruct<F> set(F field, long value) {
        buffer.putLong(field.ordinal() * 8, value);
        return this;
    }

    NativeStruct<F> set(F field, double value) {
        buffer.putDouble(field.ordinal() * 8, value);
        return this;
    }

    NativeStruct<F> set(F field, boolean value) {
        return set(field, value ? 1L : 0L);
    }

    long get(F field) {
        return buffer.getLong(field.ordinal() * 8);
    }

    void clear() {
        for (int i = 0; i < buffer.capacity(); i += 8) {
            buffer.putLong(i, 0L);
        }
    }

    long address() {
        return address;
    }

    /** Keeps the buffer reachable until a native call that reads it has returned. */
    ByteBuffer buffer() {
        return buffer;
    }
}
