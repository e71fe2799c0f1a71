package io.xpuflow.device;

import io.xpuflow.nativebind.XpuNative;

/** Status checking and library facts shared by the device wrappers. */
final class Native {
    private Native() {}

    static void check(int status, String operation) {
        if (status != 0) {
            throw new DeviceException(operation, status, XpuNative.xpu_last_error());
        }
    }
}
