// Bad model folders: each gives one actcap::Error line naming the file and the problem. Also the sharded
// checkpoint layout, built by splitting a reference checkpoint.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <cstring>
#include <fstream>

#include "capture/recorder.h"
#include "capture/sites.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "engine_test_util.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "../test_util.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

class EngineBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("actcap-engine-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const char* f : {"config.json", "generation_config.json", "model.safetensors"}) {
      fs::copy_file(fs::path(ACTCAP_TEST_DATA) / "reference/llama" / f, dir_ / f);
      fs::permissions(dir_ / f, fs::perms::owner_read | fs::perms::owner_write);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const char* name) const { return (dir_ / name).string(); }

  // The error message of loading the folder (fails the test if it loads).
  std::string load_error() const {
    try {
      Model::load(dir_.string());
    } catch (const Error& e) {
      std::string message = e.what();
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      return message;
    }
    ADD_FAILURE() << "loading " << dir_ << " did not fail";
    return "";
  }

  // Rewrites model.safetensors through `edit(name, tensor) -> keep?`.
  void rewrite_weights(const std::function<bool(const std::string&, Tensor&)>& edit) {
    SafetensorsWriter writer;
    {
      SafetensorsFile original(path("model.safetensors"));
      for (const auto& name : original.names()) {
        Tensor t = Tensor::copy_of(original.view(name));
        if (edit(name, t)) writer.add(name, t.view());
      }
    }
    writer.write(path("model.safetensors"));
  }

  fs::path dir_;
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST_F(EngineBadInput, MissingConfig) {
  fs::remove(dir_ / "config.json");
  const auto message = load_error();
  EXPECT_TRUE(contains(message, path("config.json"))) << message;
  EXPECT_TRUE(contains(message, "not found")) << message;
}

TEST_F(EngineBadInput, MalformedConfig) {
  write_file_atomic(path("config.json"), "{\"model_type\": \"llama\", ");
  const auto message = load_error();
  EXPECT_TRUE(contains(message, path("config.json")) && contains(message, "malformed JSON")) << message;
}

TEST_F(EngineBadInput, ConfigMissingAKey) {
  write_file_atomic(path("config.json"), R"({"model_type": "llama", "vocab_size": 512})");
  const auto message = load_error();
  EXPECT_TRUE(contains(message, path("config.json")) && contains(message, "hidden_size")) << message;
}

TEST_F(EngineBadInput, UnknownModelType) {
  write_file_atomic(path("config.json"), R"({"model_type": "mamba", "vocab_size": 512})");
  const auto message = load_error();
  EXPECT_TRUE(contains(message, path("config.json")) && contains(message, "\"mamba\" is not supported")) << message;
}

TEST_F(EngineBadInput, UnsupportedRopeType) {
  std::string config = read_file(path("config.json"));
  config.replace(config.find("\"rope_scaling\": null"), 20, R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0})");
  write_file_atomic(path("config.json"), config);
  const auto message = load_error();
  EXPECT_TRUE(contains(message, path("config.json")) && contains(message, "yarn")) << message;
}

TEST_F(EngineBadInput, MissingWeights) {
  fs::remove(dir_ / "model.safetensors");
  const auto message = load_error();
  EXPECT_TRUE(contains(message, dir_.string()) && contains(message, "model.safetensors")) << message;
}

TEST_F(EngineBadInput, MissingTensor) {
  rewrite_weights([](const std::string& name, Tensor&) { return name != "model.layers.1.mlp.up_proj.weight"; });
  const auto message = load_error();
  EXPECT_TRUE(contains(message, path("model.safetensors"))) << message;
  EXPECT_TRUE(contains(message, "missing tensor 'model.layers.1.mlp.up_proj.weight' (expected shape [128, 64])"))
      << message;
}

TEST_F(EngineBadInput, MisshapedTensor) {
  rewrite_weights([](const std::string& name, Tensor& t) {
    if (name == "model.layers.0.self_attn.k_proj.weight") t.reshape({64, 32});
    return true;
  });
  const auto message = load_error();
  EXPECT_TRUE(contains(message, path("model.safetensors"))) << message;
  EXPECT_TRUE(contains(message, "'model.layers.0.self_attn.k_proj.weight' has shape [64, 32], expected [32, 64]"))
      << message;
}

TEST_F(EngineBadInput, MalformedSafetensors) {
  std::string bytes = read_file(path("model.safetensors"));
  bytes[10] = '!';  // inside the JSON header
  write_file_atomic(path("model.safetensors"), bytes);
  auto message = load_error();
  EXPECT_TRUE(contains(message, path("model.safetensors")) && contains(message, "malformed")) << message;

  write_file_atomic(path("model.safetensors"), bytes.substr(0, 5));
  message = load_error();
  EXPECT_TRUE(contains(message, path("model.safetensors"))) << message;
}

TEST_F(EngineBadInput, ShardedCheckpointLoadsLikeTheSingleFile) {
  std::vector<int32_t> ids = testing::token_sequence(9, 1);
  for (auto& id : ids) id %= 512;  // the llama reference's vocabulary
  auto capture = [&](Model& model) {
    const SiteSelection all = SiteSelection::all(model);
    Recorder recorder;
    KVCache cache = model.new_cache();
    model.forward(ids, cache, CaptureTarget{&all, &recorder});
    return recorder.take(0, 9, 9);
  };
  auto single = Model::load(dir_.string());
  const auto expected = capture(*single);
  const std::string single_hash = single->weights_sha256();

  SafetensorsWriter first, second;
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  {
    SafetensorsFile original(path("model.safetensors"));
    for (const auto& name : original.names()) {
      const bool early = name.find("layers.1.") == std::string::npos;
      (early ? first : second).add(name, original.view(name));
      index["weight_map"][name] = early ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    }
  }
  first.write(path("model-00001-of-00002.safetensors"));
  second.write(path("model-00002-of-00002.safetensors"));
  write_file_atomic(path("model.safetensors.index.json"), index.dump());
  fs::remove(dir_ / "model.safetensors");
  auto sharded = Model::load(dir_.string());
  testing::expect_bitwise_equal(expected, capture(*sharded));
  EXPECT_NE(sharded->weights_sha256(), single_hash);

  fs::remove(dir_ / "model-00002-of-00002.safetensors");
  const auto message = load_error();
  EXPECT_TRUE(contains(message, path("model-00002-of-00002.safetensors"))) << message;
}

// A config naming far more layers than the checkpoint holds fails naming the key, before allocating per layer
// (n_layer 1e9 used to allocate 7.8 GB first).
TEST_F(EngineBadInput, LayerCountBeyondTheCheckpoint) {
  std::string config = read_file(path("config.json"));
  config.replace(config.find("\"num_hidden_layers\": 2"), 22, "\"num_hidden_layers\": 1000000000");
  write_file_atomic(path("config.json"), config);
  const auto message = load_error();
  EXPECT_TRUE(contains(message, path("config.json"))) << message;
  EXPECT_TRUE(contains(message, "\"num_hidden_layers\" is 1000000000")) << message;
  EXPECT_TRUE(contains(message, "'model.layers.999999999.input_layernorm.weight'")) << message;
}

TEST_F(EngineBadInput, IndexWithAnOutOfRangeNumber) {
  fs::remove(dir_ / "model.safetensors");
  write_file_atomic(path("model.safetensors.index.json"), R"({"metadata": {"total_size": 1e999}, "weight_map": {}})");
  const auto message = load_error();
  EXPECT_TRUE(contains(message, path("model.safetensors.index.json")) && contains(message, "malformed JSON")) << message;
}

TEST(EngineBadConfig, Gpt2LayerCountBeyondTheCheckpoint) {
  const fs::path dir = test::temp_dir("gpt2_layers");
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(fs::path(ACTCAP_TEST_DATA) / "reference/gpt2" / f, dir / f);
  std::string config = read_file((dir / "config.json").string());
  config.replace(config.find("\"n_layer\": 2"), 12, "\"n_layer\": 1000000000");
  write_file_atomic((dir / "config.json").string(), config);
  test::expect_one_line_error([&] { Model::load(dir.string()); },
                              {(dir / "config.json").string(), "\"n_layer\" is 1000000000", "h.999999999.ln_1.weight"});
  fs::remove_all(dir);
}

// A data section that starts off the 4-byte grid (legal in the format) used to mean misaligned float loads
// (undefined behaviour, caught by the sanitizer build): such tensors are copied, with identical results.
TEST_F(EngineBadInput, MisalignedWeightsGiveTheSameActivations) {
  std::vector<int32_t> ids = testing::token_sequence(5, 2);
  for (auto& id : ids) id %= 512;
  auto capture = [&](Model& model) {
    const SiteSelection all = SiteSelection::all(model);
    Recorder recorder;
    KVCache cache = model.new_cache();
    model.forward(ids, cache, CaptureTarget{&all, &recorder});
    return recorder.take(0, 5, 5);
  };
  const auto expected = capture(*Model::load(dir_.string()));

  std::string bytes = read_file(path("model.safetensors"));
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  bytes.insert(8 + header_len, "  ");  // JSON whitespace: every tensor now starts 2 bytes off
  header_len += 2;
  std::memcpy(bytes.data(), &header_len, 8);
  write_file_atomic(path("model.safetensors"), bytes);
  ASSERT_EQ(SafetensorsFile(path("model.safetensors")).data_offset() % 4, 2u);
  testing::expect_bitwise_equal(expected, capture(*Model::load(dir_.string())));
}

TEST(EngineProvenance, HashesNameTheFiles) {
  auto model = Model::load(std::string(ACTCAP_TEST_DATA) + "/reference/gpt2");
  EXPECT_EQ(model->config_sha256().size(), 64u);
  EXPECT_EQ(model->weights_sha256().size(), 64u);
  EXPECT_NE(model->config_sha256(), model->weights_sha256());
  EXPECT_EQ(model->dir(), std::string(ACTCAP_TEST_DATA) + "/reference/gpt2");
}

}  // namespace
}  // namespace actcap
