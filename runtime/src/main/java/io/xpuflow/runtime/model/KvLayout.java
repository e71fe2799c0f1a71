package io.xpuflow.runtime.model;

import io.xpuflow.runtime.config.AttentionConfig;
import io.xpuflow.runtime.config.ModelConfig;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How layers share KV block tables: one group per attention type (full, or sliding with a given
 * window), in order of first appearance. Decoder and MTP layers of the same type share a group.
 *
 * @param layerGroup group of each layer, decoder layers then MTP layers
 * @param groupWindow per group: the sliding window, or 0 for a full-attention group
 */
public record KvLayout(int[] layerGroup, int[] groupWindow) {

    public static KvLayout of(ModelConfig config) {
        Map<String, Integer> groups = new LinkedHashMap<>();
        List<Integer> windows = new ArrayList<>();
        List<ModelConfig.LayerConfig> all = new ArrayList<>(config.layers());
        all.addAll(config.mtpLayers());
        int[] layerGroup = new int[all.size()];
        for (int l = 0; l < all.size(); l++) {
            AttentionConfig a = all.get(l).attention();
            Integer g = groups.get(a.kvGroupKey());
            if (g == null) {
                g = groups.size();
                groups.put(a.kvGroupKey(), g);
                windows.add(a.sliding() ? a.window() : 0);
            }
            layerGroup[l] = g;
        }
        return new KvLayout(layerGroup, windows.stream().mapToInt(Integer::intValue).toArray());
    }

    public int numGroups() {
        return groupWindow.length;
    }

    /** True if the group keeps only a sliding window of tokens. */
    public boolean sliding(int group) {
        return groupWindow[group] > 0;
    }
}
