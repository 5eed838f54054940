// Weights used in their stored dtype on the CPU (bf16/fp16 mapped in place, widened tile by tile): an fp32 run
// gives the bits of the same weights stored in fp32, stays bit-identical across thread counts and batches, and
// the process holds the checkpoint once (no fp32 copy).
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "../test_util.h"
#include "capture/sites.h"
#include "core/thread_pool.h"
#include "engine_test_util.h"
#include "generate/generate.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;
using testing::expect_bitwise_equal;

// The reference model in `folder` with its weights rounded to values exact in bf16 and fp16, stored as `dtype`.
std::string rounded_copy(const std::string& folder, DType dtype, const fs::path& dir) {
  fs::create_directories(dir);
  for (const char* file : {"config.json", "generation_config.json"})
    if (fs::exists(fs::path(folder) / file)) fs::copy_file(fs::path(folder) / file, dir / file);
  const SafetensorsFile source((fs::path(folder) / "model.safetensors").string());
  SafetensorsWriter writer;
  for (const std::string& name : source.names()) {
    Tensor values = Tensor::to_f32(source.view(name));
    for (int64_t i = 0; i < values.numel(); ++i) {
      const float v = round_to(DType::BF16, values.f32()[i]);
      values.f32()[i] = round_to(DType::F16, v) == v ? v : 0.0f;  // fp16 subnormals lose bf16 bits
    }
    Tensor stored(values.shape(), dtype);
    convert_from_f32(values.f32(), dtype, stored.data(), size_t(values.numel()));
    writer.add(name, stored.view());
  }
  writer.write((dir / "model.safetensors").string());
  return dir.string();
}

Recorder::Taken capture_prefill(Model& model, const std::vector<int32_t>& ids) {
  const SiteSelection all = SiteSelection::all(model);
  Recorder recorder;
  KVCache cache = model.new_cache();
  model.forward(ids, cache, CaptureTarget{&all, &recorder});
  return recorder.take(0, int(ids.size()), int(ids.size()));
}

std::vector<int32_t> prompt(int n, int salt, int vocab) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(int32_t((i * 37 + salt * 101 + 5) % vocab));
  return ids;
}

// (reference model, ACTCAP_CPU_KERNELS): both kernel paths, whichever the CPU would pick.
class StoredDtype : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  void SetUp() override {
    setenv("ACTCAP_CPU_KERNELS", std::get<1>(GetParam()).c_str(), 1);
    dir_ = test::temp_dir("stored_dtype_" + std::get<0>(GetParam()));
  }
  void TearDown() override {
    unsetenv("ACTCAP_CPU_KERNELS");
    ThreadPool::set_global_threads(0);
    fs::remove_all(dir_);
  }
  std::string folder() const { return std::string(ACTCAP_TEST_DATA) + "/reference/" + std::get<0>(GetParam()); }
  fs::path dir_;
};

TEST_P(StoredDtype, Fp32RunGivesTheBitsOfFp32Weights) {
  auto fp32 = Model::load(rounded_copy(folder(), DType::F32, dir_ / "f32"));
  const auto ids = prompt(40, 1, int(fp32->config().vocab_size));
  ThreadPool::set_global_threads(1);
  const auto expected = capture_prefill(*fp32, ids);
  for (DType dtype : {DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtype_name(dtype));
    auto model = Model::load(rounded_copy(folder(), dtype, dir_ / std::string(dtype_name(dtype))));
    ThreadPool::set_global_threads(1);
    expect_bitwise_equal(expected, capture_prefill(*model, ids));
    for (int threads : {2, 3}) {
      SCOPED_TRACE(threads);
      ThreadPool::set_global_threads(threads);
      expect_bitwise_equal(expected, capture_prefill(*model, ids));
    }
  }
}

TEST_P(StoredDtype, Bf16WeightsBatchGivesWhatEachSequenceGivesAlone) {
  auto model = Model::load(rounded_copy(folder(), DType::BF16, dir_ / "bf16"));
  const int vocab = int(model->config().vocab_size);
  const std::vector<std::vector<int32_t>> prompts = {prompt(30, 2, vocab), prompt(5, 3, vocab), prompt(17, 4, vocab)};
  const SiteSelection all = SiteSelection::all(*model);
  GenerationOptions options;
  options.max_new_tokens = 4;
  options.eos_token_ids = std::vector<int32_t>{};
  Recorder together;
  ThreadPool::set_global_threads(2);
  auto batch = generate(*model, prompts, options, &all, CaptureMode::Stepwise, &together);
  ASSERT_EQ(batch.size(), prompts.size());
  for (size_t s = 0; s < prompts.size(); ++s) {
    SCOPED_TRACE(s);
    ThreadPool::set_global_threads(int(s) + 1);
    Recorder alone;
    auto single = generate(*model, {prompts[s]}, options, &all, CaptureMode::Stepwise, &alone);
    EXPECT_EQ(single[0].token_ids, batch[s].token_ids);
    const int n = int(batch[s].token_ids.size()), n_prompt = batch[s].n_prompt;
    expect_bitwise_equal(together.take(int(s), n_prompt, n), alone.take(0, n_prompt, n));
  }
}

// gpt2: Conv1D weights and learned positions; llama: separate lm_head; qwen3: tied embeddings; opt: offset positions.
INSTANTIATE_TEST_SUITE_P(Engine, StoredDtype,
                         ::testing::Combine(::testing::Values("gpt2", "llama", "qwen3", "opt"),
                                            ::testing::Values("portable", "auto")));

// A /proc/self/status field in KiB ("VmRSS", "VmHWM"); -1 when absent.
int64_t status_kib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with(key + ":")) return std::stoll(line.substr(key.size() + 1));
  return -1;
}

// Peak memory growth (KiB) of a child process that loads the model in `dir` and runs one forward pass.
int64_t peak_growth_of_a_forward_kib(const std::string& dir) {
  ThreadPool::set_global_threads(1);  // no worker threads: the child has only the forking one
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t child = fork();
  if (child == 0) {
    ::malloc_trim(0);  // memory the parent freed would otherwise be reused unseen
    std::ofstream("/proc/self/clear_refs") << "5";  // the peak restarts from what the child holds now
    const int64_t before = status_kib("VmRSS");
    {
      auto model = Model::load(dir);
      KVCache cache = model->new_cache(8);
      model->forward(prompt(8, 5, int(model->config().vocab_size)), cache, CaptureTarget{});
    }
    const int64_t growth = status_kib("VmHWM") - before;
    (void)!write(fds[1], &growth, sizeof growth);
    _exit(0);
  }
  close(fds[1]);
  int64_t growth = -1;
  if (read(fds[0], &growth, sizeof growth) != sizeof growth) growth = -1;
  close(fds[0]);
  waitpid(child, nullptr, 0);
  ThreadPool::set_global_threads(0);
  return growth;
}

TEST(StoredDtypeMemory, Bf16CheckpointCostsItsFileSizeNotAnFp32Copy) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's quarantine keeps freed memory resident: peak RSS says nothing here";
#endif
  const fs::path dir = test::temp_dir("stored_dtype_memory");
  std::ofstream(dir / "config.json") << R"({"model_type": "llama", "vocab_size": 4096, "hidden_size": 512,
      "intermediate_size": 1536, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 8,
      "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false})";
  // Weights of the model's shapes, written in bf16 (~36 MiB) from a synthetic fp32 checkpoint.
  {
    const auto synthetic = Checkpoint::synthetic(3);
    SafetensorsWriter writer;
    auto add = [&](const std::string& name, const Shape& shape) {
      const TensorView values = synthetic->view(name, shape);
      Tensor stored(shape, DType::BF16);
      convert_from_f32(values.f32(), DType::BF16, stored.data(), size_t(values.numel()));
      writer.add(name, stored.view());
    };
    add("model.embed_tokens.weight", {4096, 512});
    add("lm_head.weight", {4096, 512});
    add("model.norm.weight", {512});
    for (int i = 0; i < 4; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      for (const char* m : {"q_proj", "k_proj", "v_proj", "o_proj"}) add(p + "self_attn." + m + ".weight", {512, 512});
      add(p + "mlp.gate_proj.weight", {1536, 512});
      add(p + "mlp.up_proj.weight", {1536, 512});
      add(p + "mlp.down_proj.weight", {512, 1536});
      add(p + "input_layernorm.weight", {512});
      add(p + "post_attention_layernorm.weight", {512});
    }
    writer.write((dir / "model.safetensors").string());
  }
  const int64_t file_kib = int64_t(fs::file_size(dir / "model.safetensors") / 1024);
  const int64_t growth = peak_growth_of_a_forward_kib(dir.string());
  fs::remove_all(dir);
  ASSERT_GE(growth, 0);
  // An fp32 copy would add twice the file on top of the mapped file; what remains is the map, a tile buffer
  // and activations.
  EXPECT_LT(growth, file_kib * 5 / 4) << "file " << file_kib << " KiB";
  EXPECT_GT(growth, file_kib / 2) << "the forward pass should have touched the mapped weights";
}

}  // namespace
}  // namespace actcap
