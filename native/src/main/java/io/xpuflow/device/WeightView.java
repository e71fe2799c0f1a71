package io.xpuflow.device;

/**
 * Where a weight lives and how it is stored, as the device reads it: a row-major [rows, cols]
 * matrix at {@code address}. FP8 weights also give their F32 block-scale matrix.
 *
 * @param dtype native weight dtype code: 0 F32, 1 BF16, 2 F16, 3 FP8 E4M3
 */
public record WeightView(
        long address,
        int dtype,
        long rows,
        long cols,
        long scaleAddress,
        long scaleRows,
        long scaleCols,
        long blockRows,
        long blockCols) {

    public static final int F32 = 0;
    public static final int BF16 = 1;
    public static final int F16 = 2;
    public static final int F8_E4M3 = 3;

    /** An unquantised weight. */
    public static WeightView plain(long address, int dtype, long rows, long cols) {
        return new WeightView(address, dtype, rows, cols, 0, 0, 0, 0, 0);
    }
}
