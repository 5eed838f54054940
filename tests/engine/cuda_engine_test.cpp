// The CUDA engine against Hugging Face transformers and the CPU engine: every site of every reference model in
// fp32, the llama reference's bf16 run, greedy generation, --deterministic, and packed batches of unequal
// lengths. Every test skips itself where there is no GPU, and a build without CUDA has a single skipping test.
#include <gtest/gtest.h>

#include "../gpu_test_util.h"

#ifdef ACTCAP_HAVE_CUDA
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "bf16_reference.h"
#include "capture/recorder.h"
#include "capture/sites.h"
#include "core/dtype.h"
#include "engine_test_util.h"
#include "generate/generate.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "ops/backend.h"
#include "reference_data.h"
#endif

namespace actcap {
namespace {

#ifdef ACTCAP_HAVE_CUDA

namespace fs = std::filesystem;
using testing::Deviation;
using testing::bf16_ulp;
using testing::deviation;
using testing::write_bf16_cast_of;

class CudaEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    ACTCAP_SKIP_WITHOUT_GPU();
  }
};

LoadOptions on_cuda(LoadOptions options, DType dtype, bool deterministic = false) {
  options.backend.device = ops::Device{ops::Device::Type::Cuda, 0};
  options.backend.dtype = dtype;
  options.backend.deterministic = deterministic;
  return options;
}

using Sites = std::map<std::string, Tensor>;

Sites by_name(Recorder::Taken taken) {
  Sites sites;
  for (auto& [site, tensor] : taken.sites) sites.emplace(site, std::move(tensor));
  return sites;
}

// Every site of one prefill of `ids` on a fresh cache, as sequence 0.
Recorder::Taken capture_prefill(Model& model, std::span<const int32_t> ids) {
  const SiteSelection all = SiteSelection::all(model);
  Recorder recorder;
  KVCache cache = model.new_cache();
  model.forward(ids, cache, CaptureTarget{&all, &recorder});
  model.synchronize();  // deliveries may still be in flight until then
  const int n = int(ids.size());
  return recorder.take(0, n, n);
}

void keep_worst(std::pair<double, std::string>& worst, double relative, const std::string& where) {
  if (relative >= worst.first) worst = {relative, where};
}

TEST_F(CudaEngine, Fp32MatchesTransformersAndTheCpuEngineOnEverySite) {
  const auto folders = testing::reference_folders();
  ASSERT_FALSE(folders.empty());
  // model_type -> (largest relative error, where)
  std::map<std::string, std::pair<double, std::string>> worst_vs_hf, worst_vs_cpu;
  for (const auto& folder : folders) {
    SCOPED_TRACE(folder);
    const LoadOptions cpu_options = testing::reference_load_options(folder);
    auto cpu = Model::load(folder, cpu_options);
    auto gpu = Model::load(folder, on_cuda(cpu_options, DType::F32));
    ASSERT_EQ(gpu->site_names(), cpu->site_names());
    SafetensorsFile reference((fs::path(folder) / "reference.safetensors").string());
    const auto cases = testing::reference_cases(reference);
    ASSERT_FALSE(cases.empty());
    const std::string name = fs::path(folder).filename().string();
    const std::string type = gpu->config().model_type;
    for (const auto& c : cases) {
      SCOPED_TRACE(c);
      const auto ids = testing::reference_ids(reference, c + "/input_ids");
      const Sites ours = by_name(capture_prefill(*gpu, ids));
      const Sites engine = by_name(capture_prefill(*cpu, ids));
      const auto expected_sites = testing::reference_sites(reference, c);
      EXPECT_GT(expected_sites.size(), 10u);
      EXPECT_EQ(ours.size(), expected_sites.size()) << "the CUDA engine produces sites the reference lacks";
      EXPECT_EQ(ours.size(), engine.size());
      for (const auto& [site, key] : expected_sites) {
        SCOPED_TRACE(site);
        ASSERT_TRUE(ours.count(site)) << "the CUDA engine does not produce site " << site;
        ASSERT_TRUE(engine.count(site)) << "the CPU engine does not produce site " << site;
        const Tensor& got = ours.at(site);
        const Tensor expected = Tensor::to_f32(reference.view(key));
        ASSERT_EQ(got.shape(), expected.shape())
            << shape_string(got.shape()) << " vs " << shape_string(expected.shape());
        ASSERT_EQ(got.shape(), engine.at(site).shape());

        const Deviation vs_hf = deviation(got, expected);
        EXPECT_LE(vs_hf.max_error, 1e-4 * vs_hf.max_reference)
            << "vs transformers: max |error| " << vs_hf.max_error << ", max |reference| " << vs_hf.max_reference;
        const Deviation vs_cpu = deviation(got, engine.at(site));
        EXPECT_LE(vs_cpu.max_error, 1e-4 * vs_cpu.max_reference)
            << "vs the CPU engine: max |error| " << vs_cpu.max_error << ", max |CPU| " << vs_cpu.max_reference;
        keep_worst(worst_vs_hf[type], vs_hf.relative(), name + ":" + key);
        keep_worst(worst_vs_cpu[type], vs_cpu.relative(), name + ":" + key);
      }
    }
  }
  for (const auto& [type, w] : worst_vs_hf) {
    std::printf("[cuda fp32] worst relative error vs transformers %-8s %.3g (%s); vs the CPU engine %.3g (%s)\n",
                type.c_str(), w.first, w.second.c_str(), worst_vs_cpu[type].first, worst_vs_cpu[type].second.c_str());
    RecordProperty("fp32_vs_hf_" + type, std::to_string(w.first));
    RecordProperty("fp32_vs_cpu_" + type, std::to_string(worst_vs_cpu[type].first));
  }
}

// Two criteria:
// - every site within 4 bf16 ulps of its largest |value| (1.6% to 3.1% of it). HF computed this run on the CPU;
//   the GPU sums its products in another order, so a rounding to bf16 flips by one ulp here and there, and the
//   flips travel down the two layers (norms rescale them, nothing amplifies them). A wrong operation lies far
//   outside. This alone does not show that the GPU rounds where HF rounds: fp32 arithmetic on the same bf16
//   weights stays within 3.1 ulps too (the CPU engine, measured), although only 8% of its values are
//   bit-identical to HF's. Hence
// - bf16 on the GPU must be closer to HF's bf16 run, on average over every value, than fp32 arithmetic on the same
//   bf16 weights (the CPU engine): at most half its mean |error|. Rounding each operation's output where HF
//   does leaves only the rare one-ulp flips.
TEST_F(CudaEngine, Bf16MatchesTransformersBf16RunWithinRounding) {
  const fs::path source = fs::path(ACTCAP_TEST_DATA) / "reference/llama";
  const fs::path dir = fs::temp_directory_path() / ("actcap-cuda-bf16-llama-" + std::to_string(::getpid()));
  write_bf16_cast_of(source, dir);
  LoadOptions options;
  options.rope_frequencies_in_checkpoint_dtype = true;
  auto gpu = Model::load(dir.string(), on_cuda(options, DType::BF16));
  auto fp32_arithmetic = Model::load(dir.string(), options);  // CPU
  SafetensorsFile reference((source / "reference.safetensors").string());

  constexpr double kUlps = 4;
  double worst_ulps = 0, gpu_error_sum = 0, fp32_error_sum = 0;
  int64_t gpu_identical = 0, fp32_identical = 0, total = 0;
  for (const char* c : {"bf16.s0", "bf16.s1"}) {
    SCOPED_TRACE(c);
    const auto ids = testing::reference_ids(reference, std::string(c) + "/input_ids");
    const Sites ours = by_name(capture_prefill(*gpu, ids));
    const Sites fp32 = by_name(capture_prefill(*fp32_arithmetic, ids));
    const auto expected_sites = testing::reference_sites(reference, c);
    EXPECT_GT(expected_sites.size(), 10u);
    EXPECT_EQ(ours.size(), expected_sites.size());
    for (const auto& [site, key] : expected_sites) {
      SCOPED_TRACE(site);
      ASSERT_TRUE(ours.count(site)) << "the CUDA engine does not produce site " << site;
      ASSERT_TRUE(fp32.count(site));
      const Tensor& got = ours.at(site);
      const Tensor expected = Tensor::to_f32(reference.view(key));
      ASSERT_EQ(got.shape(), expected.shape()) << shape_string(got.shape()) << " vs " << shape_string(expected.shape());
      ASSERT_EQ(fp32.at(site).shape(), expected.shape());
      const Deviation d = deviation(got, expected);
      const double ulps = d.max_error / bf16_ulp(d.max_reference);
      EXPECT_LE(ulps, kUlps) << "max |error| " << d.max_error << ", max |reference| " << d.max_reference;
      worst_ulps = std::max(worst_ulps, ulps);
      const float* e = expected.f32();
      const float* g = got.f32();
      const float* f = fp32.at(site).f32();
      for (int64_t i = 0; i < expected.numel(); ++i) {
        gpu_error_sum += std::fabs(double(g[i]) - double(e[i]));
        fp32_error_sum += std::fabs(double(f[i]) - double(e[i]));
        gpu_identical += g[i] == e[i];
        fp32_identical += f[i] == e[i];
      }
      total += expected.numel();
      std::printf("[cuda bf16] %-8s %-32s max |error| %.3g = %.2f bf16 ulps of max |reference| %.3g (fp32: %.2f)\n",
                  c, site.c_str(), d.max_error, ulps, d.max_reference,
                  deviation(fp32.at(site), expected).max_error / bf16_ulp(d.max_reference));
    }
  }
  ASSERT_GT(total, 0);
  const double gpu_mean = gpu_error_sum / double(total), fp32_mean = fp32_error_sum / double(total);
  std::printf("[cuda bf16] worst %.2f bf16 ulps; mean |error| %.3g (fp32 arithmetic: %.3g); bit-identical to "
              "transformers' bf16 run: %.1f%% of values (fp32 arithmetic: %.1f%%)\n",
              worst_ulps, gpu_mean, fp32_mean, 100.0 * double(gpu_identical) / double(total),
              100.0 * double(fp32_identical) / double(total));
  EXPECT_LE(gpu_mean, 0.5 * fp32_mean) << "bf16 on the GPU is not closer to HF's bf16 run than fp32 arithmetic";
  RecordProperty("bf16_worst_ulps", std::to_string(worst_ulps));
  RecordProperty("bf16_mean_error", std::to_string(gpu_mean));
  RecordProperty("bf16_identical_fraction", std::to_string(double(gpu_identical) / double(total)));
  gpu.reset();
  fp32_arithmetic.reset();
  fs::remove_all(dir);
}

TEST_F(CudaEngine, GreedyGenerationInFp32GivesTransformersTokens) {
  int checked = 0;
  for (const auto& folder : testing::reference_folders()) {
    SCOPED_TRACE(folder);
    SafetensorsFile reference((fs::path(folder) / "reference.safetensors").string());
    if (!reference.contains("gen/input_ids")) continue;
    auto model = Model::load(folder, on_cuda(testing::reference_load_options(folder), DType::F32));
    const auto prompt = testing::reference_ids(reference, "gen/input_ids");
    const auto expected = testing::reference_ids(reference, "gen/output_ids");
    GenerationOptions options;
    options.max_new_tokens = int(expected.size() - prompt.size());
    const auto out = generate(*model, {prompt}, options, nullptr, CaptureMode::Rerun, nullptr);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].token_ids, expected);
    EXPECT_EQ(out[0].n_prompt, int(prompt.size()));
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

const char* const kArchitectures[] = {"gpt2",   "llama",     "mistral",     "qwen2",     "qwen3",
                                      "opt",    "olmo2",     "olmo",        "gemma2",    "gemma3_text",
                                      "qwen3_moe", "mixtral", "gpt_neox",   "phi3",      "phi3_longrope"};

TEST_F(CudaEngine, DeterministicBf16IsBitIdenticalAcrossRuns) {
  for (const char* type : kArchitectures) {
    SCOPED_TRACE(type);
    const std::string config = testing::synthetic_config(type);
    const auto ids = testing::token_sequence(150, 1);  // several tiles of rows, past the sliding window of 64
    const LoadOptions options = on_cuda({}, DType::BF16, /*deterministic=*/true);
    auto first = Model::synthetic(config, 7, options);
    const auto reference = capture_prefill(*first, ids);
    testing::expect_bitwise_equal(reference, capture_prefill(*first, ids));
    first.reset();
    auto second = Model::synthetic(config, 7, options);  // a fresh backend: new buffers, new handles
    testing::expect_bitwise_equal(reference, capture_prefill(*second, ids));
  }
}

// Three prompts of different lengths prefilled in one packed pass, then two decode steps of one token each (so
// the sequences sit at different positions), give every site and the returned logits as each prompt alone:
// within 1e-5 by default, exactly with --deterministic.
TEST_F(CudaEngine, PackedBatchGivesEachSequenceWhatItGivesAlone) {
  for (const bool deterministic : {false, true}) {
    SCOPED_TRACE(deterministic ? "deterministic" : "default");
    const double kRelative = deterministic ? 0.0 : 1e-5;
    const std::vector<std::vector<int32_t>> prompts = {testing::token_sequence(90, 2), testing::token_sequence(7, 3),
                                                       testing::token_sequence(33, 4)};
    const size_t n_sequences = prompts.size();
    constexpr int kDecodeSteps = 2;
    auto next_token = [](size_t sequence, int step) { return int32_t((sequence * 53 + size_t(step) * 17 + 11) % 600); };
    for (const char* type : kArchitectures) {
      SCOPED_TRACE(type);
      auto model = Model::synthetic(testing::synthetic_config(type), 11, on_cuda({}, DType::F32, deterministic));
      const SiteSelection all = SiteSelection::all(*model);
      const int64_t vocab = model->config().vocab_size;

      Recorder together;
      std::vector<KVCache> caches;
      for (size_t s = 0; s < n_sequences; ++s) caches.push_back(model->new_cache());
      std::vector<Tensor> packed_logits;  // per pass: [n_sequences, vocab]
      std::vector<std::vector<int32_t>> step_tokens(n_sequences);
      for (int pass = 0; pass <= kDecodeSteps; ++pass) {
        std::vector<SequenceStep> steps;
        for (size_t s = 0; s < n_sequences; ++s) {
          if (pass > 0) step_tokens[s] = {next_token(s, pass)};
          steps.push_back(SequenceStep{pass == 0 ? std::span<const int32_t>(prompts[s])
                                                 : std::span<const int32_t>(step_tokens[s]),
                                       &caches[s], int(s)});
        }
        packed_logits.push_back(model->forward(std::span<const SequenceStep>(steps), CaptureTarget{&all, &together}));
        ASSERT_EQ(packed_logits.back().shape(), (Shape{int64_t(n_sequences), vocab}));
      }
      model->synchronize();

      for (size_t s = 0; s < n_sequences; ++s) {
        SCOPED_TRACE(s);
        Recorder alone;
        KVCache cache = model->new_cache();
        std::vector<Tensor> alone_logits;
        alone_logits.push_back(model->forward(prompts[s], cache, CaptureTarget{&all, &alone}));
        for (int step = 1; step <= kDecodeSteps; ++step) {
          const std::vector<int32_t> token = {next_token(s, step)};
          alone_logits.push_back(model->forward(token, cache, CaptureTarget{&all, &alone}));
        }
        model->synchronize();

        for (int pass = 0; pass <= kDecodeSteps; ++pass) {
          SCOPED_TRACE(pass);
          Tensor row(Shape{vocab});
          std::copy_n(packed_logits[size_t(pass)].f32() + int64_t(s) * vocab, vocab, row.f32());
          const Deviation d = deviation(row, alone_logits[size_t(pass)]);
          EXPECT_LE(d.max_error, kRelative * d.max_reference) << "logits: max |error| " << d.max_error;
        }
        const int n_prompt = int(prompts[s].size()), n_total = n_prompt + kDecodeSteps;
        const Sites batched = by_name(together.take(int(s), n_prompt, n_total));
        const Sites single = by_name(alone.take(0, n_prompt, n_total));
        ASSERT_EQ(batched.size(), single.size());
        for (const auto& [site, expected] : single) {
          SCOPED_TRACE(site);
          ASSERT_TRUE(batched.count(site));
          const Tensor& got = batched.at(site);
          ASSERT_EQ(got.shape(), expected.shape());
          const Deviation d = deviation(got, expected);
          EXPECT_LE(d.max_error, kRelative * d.max_reference)
              << "max |error| " << d.max_error << ", max |alone| " << d.max_reference;
        }
      }
    }
  }
}

#else

TEST(CudaEngine, SkippedWithoutCuda) { ACTCAP_SKIP_WITHOUT_GPU(); }

#endif

}  // namespace
}  // namespace actcap
