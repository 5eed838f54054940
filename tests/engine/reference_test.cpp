// Compares every activation the engine computes with what Hugging Face transformers computed for the same
// checkpoint (tests/data/reference and tests/data/extra: every folder holding reference.safetensors), and greedy
// generation with HF's generate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "capture/recorder.h"
#include "capture/sites.h"
#include "generate/generate.h"
#include "io/safetensors.h"
#include "models/model.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> reference_folders() {
  std::vector<std::string> folders;
  for (const char* root : {"reference", "extra"}) {
    fs::path dir = fs::path(ACTCAP_TEST_DATA) / root;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir))
      if (fs::exists(entry.path() / "reference.safetensors") && fs::exists(entry.path() / "config.json"))
        folders.push_back(entry.path().string());
  }
  std::sort(folders.begin(), folders.end());
  return folders;
}

// The reference generators save a bf16/fp16 checkpoint by casting the model (model.to(dtype)) and cast it back to
// fp32 to compute the references, which rounds the rotary inverse frequencies (a buffer) to that dtype; the
// engine reproduces that cast on request. transformers' from_pretrained keeps them fp32, the engine's default.
std::unique_ptr<Model> load_like_reference(const std::string& folder) {
  const ModelConfig config = ModelConfig::load(folder);
  LoadOptions options;
  options.rope_frequencies_in_checkpoint_dtype = config.dtype == "bfloat16" || config.dtype == "float16";
  return Model::load(folder, options);
}

std::vector<int32_t> ids_of(const SafetensorsFile& file, const std::string& name) {
  Tensor t = Tensor::copy_of(file.view(name));
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < t.numel(); ++i) ids.push_back(int32_t(static_cast<const int64_t*>(t.data())[i]));
  return ids;
}

// Cases are the prefixes "<case>/input_ids" other than generation and the GPU bf16 runs.
std::vector<std::string> cases_of(const SafetensorsFile& file) {
  std::vector<std::string> cases;
  for (const auto& name : file.names()) {
    const std::string suffix = "/input_ids";
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      std::string c = name.substr(0, name.size() - suffix.size());
      if (c != "gen" && !c.starts_with("bf16.")) cases.push_back(c);
    }
  }
  return cases;
}

TEST(EngineReference, EverySiteOfEveryModelMatchesTransformers) {
  const auto folders = reference_folders();
  ASSERT_FALSE(folders.empty());
  std::map<std::string, std::pair<double, std::string>> worst;  // model_type -> (relative error, where)
  for (const auto& folder : folders) {
    SCOPED_TRACE(folder);
    auto model = load_like_reference(folder);
    SafetensorsFile reference((fs::path(folder) / "reference.safetensors").string());
    const SiteSelection all = SiteSelection::all(*model);
    const auto cases = cases_of(reference);
    ASSERT_FALSE(cases.empty());
    for (const auto& c : cases) {
      const auto ids = ids_of(reference, c + "/input_ids");
      Recorder recorder;
      KVCache cache = model->new_cache();
      model->forward(ids, cache, CaptureTarget{&all, &recorder});
      auto taken = recorder.take(0, int(ids.size()), int(ids.size()));
      std::map<std::string, const Tensor*> ours;
      for (const auto& [site, tensor] : taken.sites) ours[site] = &tensor;
      int compared = 0;
      for (const auto& name : reference.names()) {
        if (!name.starts_with(c + "/") || name == c + "/input_ids") continue;
        const std::string site = name.substr(c.size() + 1);
        SCOPED_TRACE(name);
        ASSERT_TRUE(ours.count(site)) << "the engine does not produce site " << site;
        Tensor expected = Tensor::to_f32(reference.view(name));
        const Tensor& got = *ours[site];
        ASSERT_EQ(got.shape(), expected.shape()) << shape_string(got.shape()) << " vs " << shape_string(expected.shape());
        double max_ref = 0, max_err = 0;
        for (int64_t i = 0; i < expected.numel(); ++i) {
          max_ref = std::max(max_ref, double(std::fabs(expected.f32()[i])));
          max_err = std::max(max_err, double(std::fabs(expected.f32()[i] - got.f32()[i])));
        }
        EXPECT_LE(max_err, 1e-4 * max_ref) << "max |error| " << max_err << ", max |reference| " << max_ref;
        const double relative = max_ref > 0 ? max_err / max_ref : max_err;
        auto& w = worst[model->config().model_type];
        if (relative >= w.first) w = {relative, fs::path(folder).filename().string() + ":" + name};
        ++compared;
      }
      EXPECT_GT(compared, 10);
      EXPECT_EQ(ours.size(), size_t(compared)) << "the engine produces sites the reference lacks";
    }
  }
  for (const auto& [type, w] : worst)
    std::printf("[engine] worst relative error %-8s %.3g (%s)\n", type.c_str(), w.first, w.second.c_str());
}

TEST(EngineReference, GreedyGenerationMatchesTransformers) {
  for (const auto& folder : reference_folders()) {
    SCOPED_TRACE(folder);
    SafetensorsFile reference((fs::path(folder) / "reference.safetensors").string());
    if (!reference.contains("gen/input_ids")) continue;
    auto model = load_like_reference(folder);
    const auto prompt = ids_of(reference, "gen/input_ids");
    const auto expected = ids_of(reference, "gen/output_ids");
    GenerationOptions options;
    options.max_new_tokens = int(expected.size() - prompt.size());
    auto out = generate(*model, {prompt}, options, nullptr, CaptureMode::Rerun, nullptr);
    EXPECT_EQ(out[0].token_ids, expected);
    EXPECT_EQ(out[0].n_prompt, int(prompt.size()));
  }
}

}  // namespace
}  // namespace actcap
