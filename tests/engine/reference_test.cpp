// Compares every activation the engine computes with what Hugging Face transformers computed for the same
// checkpoint (tests/data/reference and tests/data/extra: every folder holding reference.safetensors), and greedy
// generation with HF's generate.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "capture/recorder.h"
#include "capture/sites.h"
#include "generate/generate.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "reference_data.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

using namespace actcap::testing;

std::unique_ptr<Model> load_like_reference(const std::string& folder) {
  return Model::load(folder, reference_load_options(folder));
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
    const auto cases = reference_cases(reference);
    ASSERT_FALSE(cases.empty());
    for (const auto& c : cases) {
      const auto ids = reference_ids(reference, c + "/input_ids");
      Recorder recorder;
      KVCache cache = model->new_cache();
      model->forward(ids, cache, CaptureTarget{&all, &recorder});
      auto taken = recorder.take(0, int(ids.size()), int(ids.size()));
      std::map<std::string, const Tensor*> ours;
      for (const auto& [site, tensor] : taken.sites) ours[site] = &tensor;
      int compared = 0;
      for (const auto& [site, name] : reference_sites(reference, c)) {
        SCOPED_TRACE(name);
        ASSERT_TRUE(ours.count(site)) << "the engine does not produce site " << site;
        Tensor expected = Tensor::to_f32(reference.view(name));
        const Tensor& got = *ours[site];
        ASSERT_EQ(got.shape(), expected.shape()) << shape_string(got.shape()) << " vs " << shape_string(expected.shape());
        const Deviation d = deviation(got, expected);
        EXPECT_LE(d.max_error, 1e-5 * d.max_reference)
            << "max |error| " << d.max_error << ", max |reference| " << d.max_reference;
        const double relative = d.relative();
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
    const auto prompt = reference_ids(reference, "gen/input_ids");
    const auto expected = reference_ids(reference, "gen/output_ids");
    GenerationOptions options;
    options.max_new_tokens = int(expected.size() - prompt.size());
    auto out = generate(*model, {prompt}, options, nullptr, CaptureMode::Rerun, nullptr);
    EXPECT_EQ(out[0].token_ids, expected);
    EXPECT_EQ(out[0].n_prompt, int(prompt.size()));
  }
}

}  // namespace
}  // namespace actcap
