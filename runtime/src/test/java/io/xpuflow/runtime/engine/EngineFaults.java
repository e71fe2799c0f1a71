package io.xpuflow.runtime.engine;

/**
 * Real faults for tests of how the engine and its users survive them (public: the operator tests use it
 * from the runtime's test jar).
 */
public final class EngineFaults {
    private EngineFaults() {}

    /**
     * Frees the engine's device model under it, as a device that lost its context would be: the next step
     * fails in the device layer ("device model is closed") for the whole batch. Safe while a step runs (the
     * device model serialises close and step).
     */
    public static void breakDevice(LlmEngine engine) {
        engine.deviceModel().close();
    }
}
