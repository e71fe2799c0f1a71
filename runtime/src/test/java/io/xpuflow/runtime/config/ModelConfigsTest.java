package io.xpuflow.runtime.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.xpuflow.runtime.config.AttentionConfig.AttentionKind;
import io.xpuflow.runtime.config.FfnConfig.Scoring;
import io.xpuflow.runtime.testutil.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ModelConfigs#read}: every fixture normalised as expected, hand-written configs of the other
 * supported families, and every bad {@code config.json} rejected with a message naming the file and field.
 */
class ModelConfigsTest {
    private static final JsonMapper JSON = new JsonMapper();
    /** Written in place of a string field value, then replaced by the bare literal NaN (as Python writes it). */
    private static final String NAN = "__NaN__";
    private static final String MIMO = "tiny-mimo-v2";
    private static final String LLAMA = "stories260k";

    @TempDir
    Path dir;

    // ---------------------------------------------------------------- fixtures

    @Test
    void tinyMimoV2() {
        ModelConfig c = ModelConfigs.read(Fixtures.model(MIMO)).config();

        assertThat(c.architecture()).isEqualTo("MiMoV2FlashForCausalLM");
        assertThat(c.numLayers()).isEqualTo(6);
        assertThat(c.vocabSize()).isEqualTo(512);
        assertThat(c.hiddenSize()).isEqualTo(64);
        assertThat(c.normEps()).isEqualTo(1e-5);
        assertThat(c.tieWordEmbeddings()).isFalse();
        assertThat(c.maxPositionEmbeddings()).isEqualTo(4096);
        assertThat(c.bosTokenId()).isNull();
        assertThat(c.eosTokenIds()).containsExactly(511);
        assertThat(c.quantization()).isNull();
        assertThat(c.mtpLayers()).as("MTP layers come from the checkpoint, not the config").isEmpty();
        assertThat(c.numMoeLayers()).isEqualTo(5);

        for (int l : new int[] {0, 5}) {
            AttentionConfig a = c.layers().get(l).attention();
            assertThat(a.kind()).as("layer %d", l).isEqualTo(AttentionKind.FULL);
            assertThat(a.window()).isZero();
            assertThat(a.numHeads()).isEqualTo(4);
            assertThat(a.numKvHeads()).isEqualTo(1);
            assertThat(a.headDimQk()).isEqualTo(48);
            assertThat(a.headDimV()).isEqualTo(32);
            assertThat(a.sink()).isFalse();
            assertThat(a.rope().theta()).isEqualTo(5_000_000.0);
        }
        for (int l = 1; l <= 4; l++) {
            AttentionConfig a = c.layers().get(l).attention();
            assertThat(a.kind()).as("layer %d", l).isEqualTo(AttentionKind.SLIDING);
            assertThat(a.window()).isEqualTo(8);
            assertThat(a.numHeads()).isEqualTo(4);
            assertThat(a.numKvHeads()).isEqualTo(2);
            assertThat(a.headDimQk()).isEqualTo(48);
            assertThat(a.headDimV()).isEqualTo(32);
            assertThat(a.sink()).isTrue();
            assertThat(a.rope().theta()).isEqualTo(10000.0);
        }
        for (ModelConfig.LayerConfig layer : c.layers()) {
            AttentionConfig a = layer.attention();
            assertThat(a.rotaryDim()).as("int(48 * 0.334) = 16").isEqualTo(16);
            assertThat(a.valueScale()).isEqualTo(0.707);
            assertThat(a.scale()).isCloseTo(1 / Math.sqrt(48), within(1e-15));
            assertThat(a.rope().scaling()).isEqualTo(new RopeConfig.None());
            assertThat(a.qkvBias()).isFalse();
            assertThat(a.qkNorm()).isFalse();
        }
        assertThat(c.layers().get(0).ffn()).isEqualTo(new FfnConfig.Dense(128));
        FfnConfig.Moe moe = new FfnConfig.Moe(8, 2, 32, Scoring.SIGMOID, 1, 1, true, true, 1.0, 0, false);
        for (int l = 1; l <= 5; l++) {
            assertThat(c.layers().get(l).ffn()).as("layer %d", l).isEqualTo(moe);
        }
    }

    @Test
    void tinyMimoV2Fp8() {
        ModelConfig c = ModelConfigs.read(Fixtures.model("tiny-mimo-v2-fp8")).config();

        assertThat(c.quantization()).isNotNull();
        assertThat(c.quantization().blockRows()).isEqualTo(16);
        assertThat(c.quantization().blockCols()).isEqualTo(16);
        assertThat(c.quantization().ignoredLayers()).hasSize(6).contains("model.layers.0.self_attn.o_proj");
        // otherwise the same model
        ModelConfig plain = ModelConfigs.read(Fixtures.model(MIMO)).config();
        assertThat(c.layers()).isEqualTo(plain.layers());
    }

    @Test
    void stories260k() {
        ModelConfig c = ModelConfigs.read(Fixtures.model(LLAMA)).config();

        assertThat(c.architecture()).isEqualTo("LlamaForCausalLM");
        assertThat(c.numLayers()).isEqualTo(5);
        assertThat(c.tieWordEmbeddings()).isTrue();
        assertThat(c.vocabSize()).isEqualTo(512);
        assertThat(c.normEps()).isEqualTo(1e-5);
        assertThat(c.bosTokenId()).isEqualTo(1);
        assertThat(c.eosTokenIds()).containsExactly(2);
        assertThat(c.maxPositionEmbeddings()).isEqualTo(512);
        assertThat(c.numMoeLayers()).isZero();
        for (ModelConfig.LayerConfig layer : c.layers()) {
            AttentionConfig a = layer.attention();
            assertThat(a.kind()).isEqualTo(AttentionKind.FULL);
            assertThat(a.numHeads()).isEqualTo(8);
            assertThat(a.numKvHeads()).isEqualTo(4);
            assertThat(a.headDimQk()).isEqualTo(8);
            assertThat(a.headDimV()).isEqualTo(8);
            assertThat(a.rotaryDim()).isEqualTo(8);
            assertThat(a.rope()).isEqualTo(RopeConfig.plain(10000.0));
            assertThat(a.scale()).isCloseTo(1 / Math.sqrt(8), within(1e-15));
            assertThat(a.valueScale()).isEqualTo(1.0);
            assertThat(a.sink()).isFalse();
            assertThat(layer.ffn()).isEqualTo(new FfnConfig.Dense(172));
        }
    }

    @Test
    void mixtralStories260k() {
        ModelConfig c = ModelConfigs.read(Fixtures.model("mixtral-stories260k")).config();

        assertThat(c.architecture()).isEqualTo("MixtralForCausalLM");
        assertThat(c.numLayers()).isEqualTo(5);
        assertThat(c.numMoeLayers()).isEqualTo(5);
        for (ModelConfig.LayerConfig layer : c.layers()) {
            assertThat(layer.attention().kind()).as("sliding_window null").isEqualTo(AttentionKind.FULL);
            assertThat(layer.ffn()).isEqualTo(
                    new FfnConfig.Moe(4, 2, 172, Scoring.SOFTMAX, 1, 1, true, false, 1.0, 0, false));
        }
    }

    // ---------------------------------------------------------------- other families, written by hand

    private static ObjectNode qwen3Dense() {
        // Qwen3-0.6B, shrunk: head_dim 128 is not hidden_size / heads
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("Qwen3ForCausalLM");
        c.put("model_type", "qwen3");
        c.put("vocab_size", 1000);
        c.put("hidden_size", 256);
        c.put("intermediate_size", 768);
        c.put("num_hidden_layers", 4);
        c.put("num_attention_heads", 4);
        c.put("num_key_value_heads", 2);
        c.put("head_dim", 128);
        c.put("max_position_embeddings", 40960);
        c.put("max_window_layers", 28);
        c.put("rms_norm_eps", 1e-6);
        c.put("rope_theta", 1000000);
        c.putNull("rope_scaling");
        c.putNull("sliding_window");
        c.put("use_sliding_window", false);
        c.put("attention_bias", false);
        c.put("tie_word_embeddings", true);
        c.put("bos_token_id", 151);
        c.put("eos_token_id", 152);
        return c;
    }

    @Test
    void qwen3HasQkNormAndItsOwnHeadDim() throws IOException {
        ModelConfig c = read(qwen3Dense());

        assertThat(c.numLayers()).isEqualTo(4);
        assertThat(c.normEps()).isEqualTo(1e-6);
        assertThat(c.tieWordEmbeddings()).isTrue();
        assertThat(c.eosTokenIds()).containsExactly(152);
        for (ModelConfig.LayerConfig layer : c.layers()) {
            AttentionConfig a = layer.attention();
            assertThat(a.kind()).isEqualTo(AttentionKind.FULL);
            assertThat(a.qkNorm()).isTrue();
            assertThat(a.qkvBias()).isFalse();
            assertThat(a.headDimQk()).isEqualTo(128);
            assertThat(a.headDimV()).isEqualTo(128);
            assertThat(a.rotaryDim()).isEqualTo(128);
            assertThat(a.numHeads()).isEqualTo(4);
            assertThat(a.numKvHeads()).isEqualTo(2);
            assertThat(a.rope().theta()).isEqualTo(1_000_000.0);
            assertThat(layer.ffn()).isEqualTo(new FfnConfig.Dense(768));
        }
    }

    @Test
    void qwen3SlidingWindowOnlyWithUseSlidingWindowAndFromMaxWindowLayers() throws IOException {
        ObjectNode json = qwen3Dense();
        json.put("sliding_window", 4096);
        assertThat(read(json).layers()).allMatch(l -> !l.attention().sliding());

        json.put("use_sliding_window", true);
        json.put("max_window_layers", 2);
        List<ModelConfig.LayerConfig> layers = read(json).layers();
        assertThat(layers).extracting(l -> l.attention().kind())
                .containsExactly(AttentionKind.FULL, AttentionKind.FULL, AttentionKind.SLIDING, AttentionKind.SLIDING);
        assertThat(layers.get(3).attention().window()).isEqualTo(4096);
    }

    private static ObjectNode qwen2() {
        // Qwen2.5-0.5B, shrunk
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("Qwen2ForCausalLM");
        c.put("model_type", "qwen2");
        c.put("vocab_size", 1000);
        c.put("hidden_size", 896);
        c.put("intermediate_size", 4864);
        c.put("num_hidden_layers", 3);
        c.put("num_attention_heads", 14);
        c.put("num_key_value_heads", 2);
        c.put("max_position_embeddings", 32768);
        c.put("max_window_layers", 21);
        c.put("rms_norm_eps", 1e-6);
        c.put("rope_theta", 1000000.0);
        c.put("sliding_window", 32768);
        c.put("use_sliding_window", false);
        c.put("tie_word_embeddings", true);
        c.put("eos_token_id", 999);
        return c;
    }

    @Test
    void qwen2HasQkvBiasAndNoSlidingWindowUnlessAsked() throws IOException {
        ModelConfig c = read(qwen2());

        assertThat(c.numLayers()).isEqualTo(3);
        for (ModelConfig.LayerConfig layer : c.layers()) {
            AttentionConfig a = layer.attention();
            assertThat(a.kind()).isEqualTo(AttentionKind.FULL);
            assertThat(a.qkvBias()).isTrue();
            assertThat(a.qkNorm()).isFalse();
            assertThat(a.headDimQk()).as("896 / 14").isEqualTo(64);
            assertThat(a.numKvHeads()).isEqualTo(2);
            assertThat(layer.ffn()).isEqualTo(new FfnConfig.Dense(4864));
        }
    }

    private static ObjectNode qwen3Moe() {
        // Qwen3-30B-A3B, shrunk
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("Qwen3MoeForCausalLM");
        c.put("model_type", "qwen3_moe");
        c.put("vocab_size", 1000);
        c.put("hidden_size", 128);
        c.put("intermediate_size", 384);
        c.put("moe_intermediate_size", 48);
        c.put("num_hidden_layers", 4);
        c.put("num_attention_heads", 4);
        c.put("num_key_value_heads", 2);
        c.put("head_dim", 32);
        c.put("num_experts", 8);
        c.put("num_experts_per_tok", 2);
        c.put("decoder_sparse_step", 1);
        c.putArray("mlp_only_layers");
        c.put("norm_topk_prob", true);
        c.put("rms_norm_eps", 1e-6);
        c.put("rope_theta", 1000000.0);
        c.putNull("sliding_window");
        c.put("use_sliding_window", false);
        c.put("tie_word_embeddings", false);
        return c;
    }

    @Test
    void qwen3MoeSparseStepAndMlpOnlyLayers() throws IOException {
        FfnConfig.Moe moe = new FfnConfig.Moe(8, 2, 48, Scoring.SOFTMAX, 1, 1, true, false, 1.0, 0, false);
        FfnConfig.Dense dense = new FfnConfig.Dense(384);

        ModelConfig all = read(qwen3Moe());
        assertThat(all.layers()).extracting(ModelConfig.LayerConfig::ffn).containsExactly(moe, moe, moe, moe);
        assertThat(all.layers()).allMatch(l -> l.attention().qkNorm() && !l.attention().qkvBias());

        ObjectNode mlpOnly = qwen3Moe();
        mlpOnly.putArray("mlp_only_layers").add(0).add(3);
        assertThat(read(mlpOnly).layers()).extracting(ModelConfig.LayerConfig::ffn)
                .containsExactly(dense, moe, moe, dense);

        ObjectNode step = qwen3Moe();
        step.put("decoder_sparse_step", 2);
        // (layer + 1) % step == 0
        assertThat(read(step).layers()).extracting(ModelConfig.LayerConfig::ffn)
                .containsExactly(dense, moe, dense, moe);
        assertThat(read(step).numMoeLayers()).isEqualTo(2);
    }

    @Test
    void qwen2MoeHasAGatedSharedExpertAndNoTopKNormalisationByDefault() throws IOException {
        ObjectNode json = qwen3Moe();
        json.putArray("architectures").add("Qwen2MoeForCausalLM");
        json.remove("head_dim");
        json.remove("norm_topk_prob");
        json.put("shared_expert_intermediate_size", 256);

        ModelConfig c = read(json);
        assertThat(c.layers()).extracting(ModelConfig.LayerConfig::ffn).containsOnly(
                new FfnConfig.Moe(8, 2, 48, Scoring.SOFTMAX, 1, 1, false, false, 1.0, 256, true));
        assertThat(c.layers()).allMatch(l -> l.attention().qkvBias() && !l.attention().qkNorm());
    }

    private static ObjectNode mistral() {
        // Mistral-7B-v0.1, shrunk
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("MistralForCausalLM");
        c.put("model_type", "mistral");
        c.put("vocab_size", 320);
        c.put("hidden_size", 128);
        c.put("intermediate_size", 448);
        c.put("num_hidden_layers", 2);
        c.put("num_attention_heads", 8);
        c.put("num_key_value_heads", 2);
        c.put("max_position_embeddings", 32768);
        c.put("rms_norm_eps", 1e-5);
        c.put("rope_theta", 10000.0);
        c.put("sliding_window", 4096);
        c.put("tie_word_embeddings", false);
        c.put("bos_token_id", 1);
        c.put("eos_token_id", 2);
        return c;
    }

    @Test
    void mistralSlidesEveryLayerWhenSlidingWindowIsSet() throws IOException {
        ModelConfig c = read(mistral());
        for (ModelConfig.LayerConfig layer : c.layers()) {
            assertThat(layer.attention().kind()).isEqualTo(AttentionKind.SLIDING);
            assertThat(layer.attention().window()).isEqualTo(4096);
            assertThat(layer.attention().headDimQk()).isEqualTo(16);
            assertThat(layer.attention().qkvBias()).isFalse();
            assertThat(layer.attention().qkNorm()).isFalse();
        }

        ObjectNode full = mistral();
        full.putNull("sliding_window");
        assertThat(read(full).layers()).allMatch(l -> l.attention().kind() == AttentionKind.FULL && l.attention().window() == 0);
    }

    @Test
    void llamaIgnoresSlidingWindowAndReadsRopeScaling() throws IOException {
        ModelConfig c = read(LLAMA, j -> {
            j.put("sliding_window", 16);
            ObjectNode s = j.putObject("rope_scaling");
            s.put("rope_type", "llama3");
            s.put("factor", 8.0);
            s.put("low_freq_factor", 1.0);
            s.put("high_freq_factor", 4.0);
            s.put("original_max_position_embeddings", 8192);
        });
        assertThat(c.layers()).allMatch(l -> !l.attention().sliding());
        assertThat(c.layers().get(0).attention().rope().scaling())
                .isEqualTo(new RopeConfig.Llama3(8.0, 1.0, 4.0, 8192));

        ModelConfig linear = read(LLAMA, j -> j.putObject("rope_scaling").put("type", "linear").put("factor", 2.0));
        assertThat(linear.layers().get(0).attention().rope().scaling()).isEqualTo(new RopeConfig.Linear(2.0));
    }

    // ---------------------------------------------------------------- the file itself

    @Test
    void missingConfigJson() {
        assertError(dir, "config.json", "no such file");
    }

    @Test
    void configJsonThatIsNotJson() throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"architectures\": [\"LlamaForCausalLM\"],");
        assertError(dir, "config.json", "not valid JSON");
    }

    @Test
    void configJsonThatIsNotAnObject() throws IOException {
        Files.writeString(dir.resolve("config.json"), "[\"LlamaForCausalLM\"]");
        assertError(dir, "config.json", "must hold a JSON object");
    }

    @Test
    void emptyConfigJson() throws IOException {
        Files.writeString(dir.resolve("config.json"), "");
        assertError(dir, "config.json", "JSON");
    }

    @Test
    void noArchitectures() throws IOException {
        write(LLAMA, j -> j.remove("architectures"));
        assertError(dir, "config.json", "'architectures'", "missing", "LlamaForCausalLM", "MiMoV2FlashForCausalLM");
    }

    @Test
    void architecturesNotAList() throws IOException {
        write(LLAMA, j -> j.put("architectures", "LlamaForCausalLM"));
        assertError(dir, "config.json", "'architectures'", "non-empty list");
    }

    @Test
    void unknownArchitectureListsTheSupportedOnes() throws IOException {
        write(LLAMA, j -> j.putArray("architectures").add("GPT2LMHeadModel"));
        assertError(dir, "config.json", "'architectures'", "GPT2LMHeadModel", "supported",
                "LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM", "Qwen2ForCausalLM",
                "Qwen2MoeForCausalLM", "Qwen3ForCausalLM", "Qwen3MoeForCausalLM", "MiMoV2FlashForCausalLM",
                "MiMoV2ForCausalLM");
    }

    // ---------------------------------------------------------------- heads

    @Test
    void zeroAttentionHeads() throws IOException {
        write(MIMO, j -> j.put("num_attention_heads", 0));
        assertError(dir, "config.json", "'num_attention_heads'", "positive", "0");
        write(LLAMA, j -> j.put("num_attention_heads", 0));
        assertError(dir, "config.json", "'num_attention_heads'", "positive", "0");
    }

    @Test
    void zeroKvHeads() throws IOException {
        write(MIMO, j -> j.put("num_key_value_heads", 0));
        assertError(dir, "config.json", "'num_key_value_heads'", "positive", "0");
        write(MIMO, j -> j.put("swa_num_key_value_heads", 0));
        assertError(dir, "config.json", "'swa_num_key_value_heads'", "positive", "0");
        write(LLAMA, j -> j.put("num_key_value_heads", 0));
        assertError(dir, "config.json", "'num_key_value_heads'", "positive", "0");
    }

    @Test
    void headsNotAMultipleOfKvHeadsInMimoFullLayers() throws IOException {
        write(MIMO, j -> j.put("num_key_value_heads", 3));
        assertError(dir, "config.json", "'num_attention_heads' 4", "not a multiple", "num_key_value_heads 3");
    }

    @Test
    void headsNotAMultipleOfKvHeadsInMimoSlidingLayers() throws IOException {
        write(MIMO, j -> j.put("swa_num_key_value_heads", 3));
        assertError(dir, "config.json", "'swa_num_attention_heads' 4", "not a multiple", "swa_num_key_value_heads 3");
    }

    @Test
    void headsNotAMultipleOfKvHeadsInLlama() throws IOException {
        write(LLAMA, j -> j.put("num_key_value_heads", 3));
        assertError(dir, "config.json", "'num_attention_heads' 8", "not a multiple", "num_key_value_heads 3");
    }

    @Test
    void hiddenSizeNotDivisibleByHeadsWithoutHeadDim() throws IOException {
        write(LLAMA, j -> {
            j.remove("head_dim");
            j.put("num_attention_heads", 7);
            j.put("num_key_value_heads", 7);
        });
        assertError(dir, "config.json", "'hidden_size'", "64", "num_attention_heads 7", "head_dim");
    }

    // ---------------------------------------------------------------- numbers

    @Test
    void nanLayernormEpsilon() throws IOException {
        write(MIMO, j -> j.put("layernorm_epsilon", NAN));
        assertThat(Files.readString(dir.resolve("config.json"))).contains("\"layernorm_epsilon\" : NaN");
        assertError(dir, "config.json", "'layernorm_epsilon'", "positive finite", "NaN");
    }

    @Test
    void nanRmsNormEpsForLlama() throws IOException {
        write(LLAMA, j -> j.put("rms_norm_eps", NAN));
        assertError(dir, "config.json", "'rms_norm_eps'", "positive finite", "NaN");
    }

    @Test
    void infiniteRmsNormEps() throws IOException {
        write(LLAMA, j -> j.put("rms_norm_eps", "__Infinity__"));
        assertError(dir, "config.json", "'rms_norm_eps'", "positive finite", "Infinity");
    }

    @Test
    void negativeEpsilon() throws IOException {
        write(MIMO, j -> j.put("layernorm_epsilon", -1e-5));
        assertError(dir, "config.json", "'layernorm_epsilon'", "positive", "-1.0E-5");
        write(LLAMA, j -> j.put("rms_norm_eps", -1e-6));
        assertError(dir, "config.json", "'rms_norm_eps'", "positive", "-1.0E-6");
        write(LLAMA, j -> j.put("rms_norm_eps", 0));
        assertError(dir, "config.json", "'rms_norm_eps'", "positive");
    }

    @Test
    void nanRopeTheta() throws IOException {
        write(MIMO, j -> j.put("swa_rope_theta", NAN));
        assertError(dir, "config.json", "'swa_rope_theta'", "NaN");
        write(LLAMA, j -> j.put("rope_theta", NAN));
        assertError(dir, "config.json", "'rope_theta'", "NaN");
    }

    @Test
    void hiddenSizeAsAString() throws IOException {
        write(MIMO, j -> j.put("hidden_size", "64"));
        assertError(dir, "config.json", "'hidden_size'", "integer", "\"64\"");
        write(LLAMA, j -> j.put("hidden_size", "64"));
        assertError(dir, "config.json", "'hidden_size'", "integer", "\"64\"");
    }

    @Test
    void fractionalLayerCount() throws IOException {
        write(LLAMA, j -> j.put("num_hidden_layers", 2.5));
        assertError(dir, "config.json", "'num_hidden_layers'", "integer", "2.5");
    }

    @Test
    void missingRequiredField() throws IOException {
        write(MIMO, j -> j.remove("vocab_size"));
        assertError(dir, "config.json", "'vocab_size'", "required");
    }

    @Test
    void eosTokenIdOutsideTheVocabulary() throws IOException {
        write(MIMO, j -> j.put("eos_token_id", 512));
        assertError(dir, "config.json", "'eos_token_id'", "512", "vocabulary of 512");
        write(LLAMA, j -> j.putArray("eos_token_id").add(2).add(-1));
        assertError(dir, "config.json", "'eos_token_id'", "-1", "vocabulary of 512");
    }

    @Test
    void eosTokenIdNotAnInteger() throws IOException {
        write(LLAMA, j -> j.put("eos_token_id", "</s>"));
        assertError(dir, "config.json", "'eos_token_id'", "integer", "</s>");
    }

    // ---------------------------------------------------------------- MiMo layers

    @Test
    void slidingWindowZeroOrNegativeForMimo() throws IOException {
        write(MIMO, j -> j.put("sliding_window", 0));
        assertError(dir, "config.json", "'sliding_window'", "positive", "was 0");
        write(MIMO, j -> j.put("sliding_window", -8));
        assertError(dir, "config.json", "'sliding_window'", "positive", "was -8");
        write(MIMO, j -> {
            j.remove("sliding_window");
            j.put("sliding_window_size", -1);
        });
        assertError(dir, "config.json", "'sliding_window_size'", "positive", "was -1");
    }

    @Test
    void slidingWindowMissingForMimo() throws IOException {
        write(MIMO, j -> {
            j.remove("sliding_window");
            j.remove("sliding_window_size");
        });
        assertError(dir, "config.json", "sliding_window", "required");
    }

    @Test
    void hybridLayerPatternOfTheWrongLength() throws IOException {
        write(MIMO, j -> j.putArray("hybrid_layer_pattern").add(0).add(1).add(0));
        assertError(dir, "config.json", "'hybrid_layer_pattern'", "3 entries", "6 layers");
    }

    @Test
    void hybridLayerPatternWithATwo() throws IOException {
        write(MIMO, j -> j.putArray("hybrid_layer_pattern").add(0).add(1).add(1).add(2).add(1).add(0));
        assertError(dir, "config.json", "'hybrid_layer_pattern'", "entry 3", "is 2", "0 (full)", "1 (sliding window)");
    }

    @Test
    void moeLayerFreqOfTheWrongLength() throws IOException {
        write(MIMO, j -> j.putArray("moe_layer_freq").add(0).add(1));
        assertError(dir, "config.json", "'moe_layer_freq'", "2 entries", "6 layers");
    }

    @Test
    void moeLayerFreqNotAList() throws IOException {
        write(MIMO, j -> j.put("moe_layer_freq", "all"));
        assertError(dir, "config.json", "'moe_layer_freq'", "list of integers");
    }

    // ---------------------------------------------------------------- MiMo experts

    @Test
    void moreExpertsPerTokenThanExperts() throws IOException {
        write(MIMO, j -> j.put("num_experts_per_tok", 9));
        assertError(dir, "config.json", "'num_experts_per_tok'", "9", "n_routed_experts 8");
        write("mixtral-stories260k", j -> j.put("num_experts_per_tok", 5));
        assertError(dir, "config.json", "'num_experts_per_tok'", "5", "4 experts");
    }

    @Test
    void groupCountNotDividingExperts() throws IOException {
        write(MIMO, j -> {
            j.put("n_group", 3);
            j.put("topk_group", 3);
        });
        assertError(dir, "config.json", "'n_group'", "3", "does not divide", "n_routed_experts 8");
    }

    @Test
    void groupsTooFewForTopK() throws IOException {
        // 8 groups of 1 expert, 1 group eligible: cannot hold top-2
        write(MIMO, j -> {
            j.put("n_group", 8);
            j.put("topk_group", 1);
        });
        assertError(dir, "config.json", "'topk_group'", "1 of 8 groups", "top-2");
        write(MIMO, j -> {
            j.put("n_group", 2);
            j.put("topk_group", 3);
        });
        assertError(dir, "config.json", "'topk_group'", "3 of 2 groups");
    }

    @Test
    void unsupportedScoringFunction() throws IOException {
        write(MIMO, j -> j.put("scoring_func", "tanh"));
        assertError(dir, "config.json", "'scoring_func'", "'tanh'", "sigmoid", "softmax");
    }

    // ---------------------------------------------------------------- RoPE

    @Test
    void unsupportedRopeScalingType() throws IOException {
        write(MIMO, j -> j.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0));
        assertError(dir, "config.json", "'rope_scaling'", "'yarn'", "default", "linear", "llama3");
        write(LLAMA, j -> j.putObject("rope_scaling").put("type", "dynamic").put("factor", 4.0));
        assertError(dir, "config.json", "'rope_scaling'", "'dynamic'", "not supported");
    }

    @Test
    void ropeScalingWithoutItsFactor() throws IOException {
        write(LLAMA, j -> j.putObject("rope_scaling").put("rope_type", "linear"));
        assertError(dir, "config.json", "'rope_scaling.factor'", "positive number");
        write(LLAMA, j -> j.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0)
                .put("low_freq_factor", 1.0).put("high_freq_factor", 4.0));
        assertError(dir, "config.json", "'rope_scaling.original_max_position_embeddings'", "positive number");
    }

    @Test
    void ropeScalingNotAnObject() throws IOException {
        write(LLAMA, j -> j.put("rope_scaling", "linear"));
        assertError(dir, "config.json", "'rope_scaling'", "object or null");
    }

    @Test
    void partialRotaryFactorAboveOne() throws IOException {
        write(MIMO, j -> j.put("partial_rotary_factor", 1.5));
        assertError(dir, "config.json", "'partial_rotary_factor'", "(0, 1]", "1.5");
    }

    // ---------------------------------------------------------------- quantisation

    @Test
    void unsupportedQuantMethod() throws IOException {
        write("tiny-mimo-v2-fp8", j -> ((ObjectNode) j.get("quantization_config")).put("quant_method", "awq"));
        assertError(dir, "config.json", "'quantization_config.quant_method'", "'awq'", "fp8");
    }

    @Test
    void badWeightBlockSize() throws IOException {
        write("tiny-mimo-v2-fp8", j -> ((ObjectNode) j.get("quantization_config")).putArray("weight_block_size").add(16));
        assertError(dir, "config.json", "'quantization_config.weight_block_size'", "two positive integers", "[16]");
        write("tiny-mimo-v2-fp8", j -> ((ObjectNode) j.get("quantization_config")).putArray("weight_block_size").add(0).add(16));
        assertError(dir, "config.json", "'quantization_config.weight_block_size'", "two positive integers", "[0,16]");
        write("tiny-mimo-v2-fp8", j -> ((ObjectNode) j.get("quantization_config")).put("weight_block_size", "16x16"));
        assertError(dir, "config.json", "'quantization_config.weight_block_size'", "two positive integers", "16x16");
        write("tiny-mimo-v2-fp8", j -> ((ObjectNode) j.get("quantization_config")).putArray("weight_block_size").add(16.5).add(16));
        assertError(dir, "config.json", "'quantization_config.weight_block_size'", "two positive integers", "16.5");
    }

    @Test
    void quantizationConfigMustBeAnObject() throws IOException {
        write("tiny-mimo-v2-fp8", j -> j.put("quantization_config", "fp8"));
        assertError(dir, "config.json", "'quantization_config'", "must be an object");
    }

    @Test
    void absurdLayerCountIsRefusedBeforeAllocating() throws IOException {
        write("tiny-mimo-v2", j -> j.put("num_hidden_layers", 1_000_000_000));
        assertError(dir, "config.json", "'num_hidden_layers'", "1000000000", "maximum");
    }

    @Test
    void unsupportedFp8Format() throws IOException {
        write("tiny-mimo-v2-fp8", j -> ((ObjectNode) j.get("quantization_config")).put("fmt", "e5m2"));
        assertError(dir, "config.json", "'quantization_config.fmt'", "'e5m2'", "e4m3");
    }

    // ---------------------------------------------------------------- unsupported features

    @Test
    void fusedQkvLayoutForMimoV2() throws IOException {
        write(MIMO, j -> {
            j.putArray("architectures").add("MiMoV2ForCausalLM");
            j.put("attention_projection_layout", "fused_qkv");
        });
        assertError(dir, "config.json", "'attention_projection_layout'", "fused_qkv", "not supported");
    }

    @Test
    void mimoV2WithSplitProjectionsParses() throws IOException {
        ModelConfig c = read(MIMO, j -> {
            j.putArray("architectures").add("MiMoV2ForCausalLM");
            j.put("attention_projection_layout", "split");
        });
        assertThat(c.architecture()).isEqualTo("MiMoV2ForCausalLM");
        assertThat(c.layers()).isEqualTo(ModelConfigs.read(Fixtures.model(MIMO)).config().layers());
    }

    @Test
    void llamaAttentionBias() throws IOException {
        write(LLAMA, j -> j.put("attention_bias", true));
        assertError(dir, "config.json", "'attention_bias'", "not supported", "LlamaForCausalLM");
    }

    @Test
    void llamaMlpBias() throws IOException {
        write(LLAMA, j -> j.put("mlp_bias", true));
        assertError(dir, "config.json", "'mlp_bias'", "not supported");
    }

    @Test
    void qwen3AttentionBiasMeansQkvBias() throws IOException {
        ObjectNode json = qwen3Dense();
        json.put("attention_bias", true);
        assertThat(read(json).layers()).allMatch(l -> l.attention().qkvBias() && l.attention().qkNorm());
    }

    @Test
    void badBooleanField() throws IOException {
        write(LLAMA, j -> j.put("tie_word_embeddings", "yes"));
        assertError(dir, "config.json", "'tie_word_embeddings'", "true or false");
    }

    @Test
    void hiddenSizeBeyondTheDevicesLimit() throws IOException {
        // found by HostileCheckpointPropertiesTest: the device refused it with a DeviceException
        for (String fixture : List.of(LLAMA, MIMO)) {
            write(fixture, j -> j.put("hidden_size", Integer.MAX_VALUE));
            assertError(dir, "config.json", "'hidden_size'", "2147483647", "maximum of 16777216");
        }
    }

    @Test
    void headSizesAndCountsBeyondTheLimit() throws IOException {
        // found by HostileCheckpointPropertiesTest: head_dim 2^31-1 made the loader allocate a RoPE table of 2^30
        // floats per layer (OutOfMemoryError) before it compared the weights with the config
        for (String field : List.of("head_dim", "v_head_dim", "swa_head_dim", "num_attention_heads")) {
            write(MIMO, j -> j.put(field, Integer.MAX_VALUE - 1));
            assertError(dir, "config.json", "beyond the supported maximum of 65536 heads of 65536");
        }
        write(LLAMA, j -> j.put("head_dim", 1 << 20));
        assertError(dir, "config.json", "layer 0", "beyond the supported maximum");
    }

    // ---------------------------------------------------------------- activation

    @Test
    void hiddenActOtherThanSiluIsRefusedNotRunAsSilu() throws IOException {
        for (String fixture : List.of(LLAMA, MIMO)) {
            for (String act : List.of("gelu", "gelu_pytorch_tanh", "relu", "SiLU", "")) {
                write(fixture, j -> j.put("hidden_act", act));
                assertError(dir, "config.json", "'hidden_act'", "'" + act + "'", "does not implement", "silu", "swish");
            }
        }
        write(LLAMA, j -> j.put("hidden_act", 7));
        assertError(dir, "config.json", "'hidden_act'", "must be a string");
        String long_ = "x".repeat(10_000);
        write(LLAMA, j -> j.put("hidden_act", long_));
        assertThatThrownBy(() -> ModelConfigs.read(dir)).isInstanceOf(ModelConfigException.class)
                .satisfies(e -> assertThat(e.getMessage()).hasSizeLessThan(400));
    }

    @Test
    void siluSwishOrNoHiddenActRead() throws IOException {
        ModelConfig silu = read(LLAMA, j -> j.put("hidden_act", "silu"));
        assertThat(read(LLAMA, j -> j.put("hidden_act", "swish"))).isEqualTo(silu);
        assertThat(read(LLAMA, j -> j.remove("hidden_act"))).isEqualTo(silu);
        assertThat(read(LLAMA, j -> j.putNull("hidden_act"))).isEqualTo(silu);
    }

    // ---------------------------------------------------------------- helpers

    /** Writes the fixture's config.json, edited, into {@link #dir}. */
    private void write(String fixture, Consumer<ObjectNode> edit) throws IOException {
        ObjectNode json = (ObjectNode) JSON.readTree(Fixtures.model(fixture).resolve("config.json").toFile());
        edit.accept(json);
        write(json);
    }

    private void write(ObjectNode json) throws IOException {
        String text = JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json)
                .replace("\"" + NAN + "\"", "NaN")
                .replace("\"__Infinity__\"", "Infinity");
        Files.writeString(dir.resolve("config.json"), text);
    }

    private ModelConfig read(String fixture, Consumer<ObjectNode> edit) throws IOException {
        write(fixture, edit);
        return ModelConfigs.read(dir).config();
    }

    private ModelConfig read(ObjectNode json) throws IOException {
        write(json);
        return ModelConfigs.read(dir).config();
    }

    private static void assertError(Path dir, String... fragments) {
        assertThatThrownBy(() -> ModelConfigs.read(dir))
                .isInstanceOf(ModelConfigException.class)
                .hasMessageContainingAll(fragments)
                .satisfies(e -> assertThat(((ModelConfigException) e).file()).isEqualTo(dir.resolve("config.json")));
    }
}
