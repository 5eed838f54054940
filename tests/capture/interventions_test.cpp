// Steering, ablation and patching during a capture (capture/interventions.h), bit for bit on the CPU against
// the unedited capture of the reference models; the same checks on CUDA where there is a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include <fmt/ranges.h>

#include "capture/capture_job.h"
#include "capture/store_reader.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "../test_util.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

std::string reference(const std::string& name) { return std::string(ACTCAP_TEST_DATA) + "/reference/" + name; }

using Sites = std::map<std::string, Tensor>;

struct Record {
  std::vector<int32_t> token_ids;
  Sites sites;
  std::vector<std::string> order;  // forward order
};

class Collector : public CaptureObserver {
 public:
  std::vector<Record> records;
  void record_captured(const RecordInfo& info, std::vector<std::pair<std::string, Tensor>>& sites) override {
    Record record{info.token_ids, {}, {}};
    for (auto& [site, tensor] : sites) {
      record.order.push_back(site);
      record.sites.emplace(site, std::move(tensor));
    }
    records.push_back(std::move(record));
  }
};

struct Capture {
  std::string model;
  std::vector<std::string> input_ids = {"5, 17, 301, 42, 9, 77"};
  int max_new_tokens = 0;
  std::string capture_mode = "rerun";
  std::string sites = "all";
  std::string device = "cpu";
  std::string out;  // empty: in memory
  InterventionOptions interventions;
};

Capture capture_of(const std::string& model) {
  Capture capture;
  capture.model = model;
  return capture;
}

std::vector<Record> run(const Capture& capture) {
  CaptureJob job;
  job.models = {capture.model};
  for (const auto& ids : capture.input_ids) job.sources.push_back({InputSource::Kind::InputIds, ids});
  job.sites = capture.sites;
  job.max_new_tokens = capture.max_new_tokens;
  job.capture_mode = capture.capture_mode;
  job.device = capture.device;
  job.interventions = capture.interventions;
  job.write_store = !capture.out.empty();
  job.out = capture.out;
  Collector collector;
  run_capture(job, collector);
  return std::move(collector.records);
}

Record run_one(const Capture& capture) {
  auto records = run(capture);
  if (records.size() != 1) throw Error("expected one record");
  return std::move(records[0]);
}

// a * b rounded to float (GCC would fuse `x + a * b` into an FMA under -march=native).
float rounded_product(float a, float b) {
  const volatile float product = a * b;
  return product;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

// A safetensors control vector with direction.N = `directions[N]`.
std::string write_vector(const fs::path& path, const std::map<int, std::vector<float>>& directions) {
  SafetensorsWriter writer;
  for (const auto& [block, values] : directions)
    writer.add("direction." + std::to_string(block), DType::F32, {int64_t(values.size())}, values.data());
  writer.write(path.string());
  return path.string();
}

std::vector<float> pseudo_random(int64_t n, int salt) {
  std::vector<float> values;
  for (int64_t i = 0; i < n; ++i) values.push_back(float(std::sin(double(i * 7 + salt * 13 + 1))) * 0.75f);
  return values;
}

int64_t hidden_size(const std::string& model) { return Model::load(model)->config().hidden_size; }

constexpr int kLayers = 2;  // every reference model's

class Interventions : public ::testing::TestWithParam<std::string> {};

TEST_P(Interventions, ZeroVectorGivesBitIdenticalCaptures) {
  const fs::path tmp = test::temp_dir("steer_zero_" + GetParam());
  const std::string model = reference(GetParam());
  const int64_t d = hidden_size(model);
  Capture plain = capture_of(model);
  plain.max_new_tokens = 4;
  Capture steered = plain;
  steered.interventions.steer = {write_vector(tmp / "zero.safetensors", {{0, std::vector<float>(size_t(d), 0.0f)},
                                                                         {1, std::vector<float>(size_t(d), 0.0f)}}) +
                                 ":3"};
  for (const std::string mode : {"rerun", "stepwise"}) {
    plain.capture_mode = steered.capture_mode = mode;
    const Record a = run_one(plain), b = run_one(steered);
    EXPECT_EQ(a.token_ids, b.token_ids);
    for (const auto& [site, tensor] : a.sites) EXPECT_TRUE(same_bits(tensor, b.sites.at(site))) << mode << " " << site;
  }
  fs::remove_all(tmp);
}

// v at block k: the sites before blocks.k.hook_resid_post are unchanged, it is the unsteered one + scale*v at
// every position (so are its views hidden_states.k+1 and blocks.k+1.hook_resid_pre), and sites after it change.
TEST_P(Interventions, VectorShiftsExactlyTheBlockOutput) {
  const fs::path tmp = test::temp_dir("steer_shift_" + GetParam());
  const std::string model = reference(GetParam());
  const int64_t d = hidden_size(model);
  const std::vector<float> v = pseudo_random(d, 3);
  const float scale = 2.5f;
  for (int k : {0, 1}) {
    Capture steered = capture_of(model);
    steered.max_new_tokens = 3;
    steered.interventions.steer = {write_vector(tmp / "v.safetensors", {{k, v}}) + ":2.5"};
    const Record after = run_one(steered);
    // The unsteered pass over the same tokens, generated ones included.
    Capture plain = capture_of(model);
    plain.input_ids = {fmt::format("{}", fmt::join(after.token_ids, ","))};
    const Record before = run_one(plain);

    const std::string output = "blocks." + std::to_string(k) + ".hook_resid_post";
    bool reached = false;
    for (const std::string& site : before.order) {
      if (site == output) reached = true;
      const Tensor& unsteered = before.sites.at(site);
      const Tensor& got = after.sites.at(site);
      if (!reached) {
        EXPECT_TRUE(same_bits(unsteered, got)) << site << " (before block " << k << "'s output)";
        continue;
      }
      // The last block's output has no views: hidden_states.L is the final norm's output.
      const bool view = site == output || (k + 1 < kLayers && (site == fmt::format("hidden_states.{}", k + 1) ||
                                                               site == fmt::format("blocks.{}.hook_resid_pre", k + 1)));
      if (view) {
        ASSERT_EQ(got.shape(), unsteered.shape()) << site;
        const int64_t rows = got.shape()[0];
        int64_t differing = 0;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t i = 0; i < d; ++i) {
            const float expected = unsteered.f32()[r * d + i] + rounded_product(v[size_t(i)], scale);
            if (std::memcmp(&expected, &got.f32()[r * d + i], sizeof(float)) != 0) ++differing;
          }
        EXPECT_EQ(differing, 0) << site << ": not unsteered + scale * v bit for bit";
      } else {
        EXPECT_FALSE(same_bits(unsteered, got)) << site << " (after block " << k << "'s output) did not change";
      }
    }
    EXPECT_TRUE(reached);
  }
  fs::remove_all(tmp);
}

INSTANTIATE_TEST_SUITE_P(ReferenceModels, Interventions, ::testing::Values("gpt2", "llama", "opt", "qwen3"));

// The GGUF layout llama.cpp's --control-vector loads (and repeng writes) steers exactly as the same directions in
// safetensors.
TEST(Steering, GgufControlVectorEqualsSafetensors) {
  const fs::path tmp = test::temp_dir("steer_gguf");
  const std::string model = reference("mistral");
  const int64_t d = hidden_size(model);
  const std::map<int, std::vector<float>> directions = {{0, pseudo_random(d, 8)}, {1, pseudo_random(d, 9)}};
  gguf::File file;
  file.metadata = {{"general.architecture", gguf::Value::string("controlvector")},
                   {"controlvector.model_hint", gguf::Value::string("mistral")},
                   {"controlvector.layer_count", gguf::Value::unsigned_int(gguf::ValueType::UINT32, 2)}};
  for (const auto& [block, values] : directions)
    file.tensors.push_back({"direction." + std::to_string(block), {uint64_t(d)}, values});
  gguf::write((tmp / "cv.gguf").string(), file);

  Capture from_gguf = capture_of(model), from_safetensors = capture_of(model), plain = capture_of(model);
  from_gguf.max_new_tokens = from_safetensors.max_new_tokens = plain.max_new_tokens = 3;
  from_gguf.interventions.steer = {(tmp / "cv.gguf").string() + ":0.75"};
  from_safetensors.interventions.steer = {write_vector(tmp / "cv.safetensors", directions) + ":0.75"};
  const Record a = run_one(from_gguf), b = run_one(from_safetensors), c = run_one(plain);
  EXPECT_EQ(a.token_ids, b.token_ids);
  for (const auto& [site, tensor] : a.sites) EXPECT_TRUE(same_bits(tensor, b.sites.at(site))) << site;
  EXPECT_FALSE(same_bits(a.sites.at("blocks.0.hook_resid_post"), c.sites.at("blocks.0.hook_resid_post")));
  fs::remove_all(tmp);
}

TEST(Steering, FilesSumWithTheirScalesAndLayerRangeLimitsThem) {
  const fs::path tmp = test::temp_dir("steer_sum");
  const std::string model = reference("llama");
  const int64_t d = hidden_size(model);
  const auto v1 = pseudo_random(d, 1), v2 = pseudo_random(d, 2), w = pseudo_random(d, 5);
  Capture plain = capture_of(model);
  plain.sites = "blocks.*.hook_resid_post";
  Capture steered = plain;
  steered.interventions.steer = {write_vector(tmp / "a.safetensors", {{0, w}, {1, v1}}) + ":0.5",
                                 write_vector(tmp / "b.safetensors", {{1, v2}}) + ":-1.25"};
  steered.interventions.steer_layers = "1-1";
  const Record before = run_one(plain), after = run_one(steered);
  EXPECT_TRUE(same_bits(before.sites.at("blocks.0.hook_resid_post"), after.sites.at("blocks.0.hook_resid_post")))
      << "direction.0 applied outside --steer-layers 1-1";
  const Tensor& x = before.sites.at("blocks.1.hook_resid_post");
  const Tensor& y = after.sites.at("blocks.1.hook_resid_post");
  for (int64_t r = 0; r < x.shape()[0]; ++r)
    for (int64_t i = 0; i < d; ++i) {
      float sum = 0.0f;  // llama.cpp's loader: 0, += v1 * 0.5, += v2 * -1.25, in file order
      sum += rounded_product(v1[size_t(i)], 0.5f);
      sum += rounded_product(v2[size_t(i)], -1.25f);
      const float expected = x.f32()[r * d + i] + sum;
      ASSERT_EQ(std::memcmp(&expected, &y.f32()[r * d + i], sizeof(float)), 0) << "row " << r << " element " << i;
    }
  fs::remove_all(tmp);
}

// tiny-gpt2 ties lm_head to the token embedding: a vector along token t's embedding, added to the last block's
// output, raises t's logit at every position, and steers greedy generation to t.
TEST(Steering, VectorAlongATokenEmbeddingMakesItGenerated) {
  const fs::path tmp = test::temp_dir("steer_token");
  const std::string model = reference("tiny-gpt2");
  const int32_t token = 11;  // ","
  SafetensorsFile weights(model + "/model.safetensors");
  const std::string name = weights.contains("transformer.wte.weight") ? "transformer.wte.weight" : "wte.weight";
  const Tensor wte = Tensor::to_f32(weights.view(name));
  const int64_t d = wte.shape()[1], vocab = wte.shape()[0];
  std::vector<float> direction(wte.f32() + token * d, wte.f32() + (token + 1) * d);

  Capture plain = capture_of(model);
  plain.input_ids = {"15496, 995"};
  plain.max_new_tokens = 6;
  plain.sites = "logits";
  Capture steered = plain;
  steered.interventions.steer = {write_vector(tmp / "comma.safetensors", {{1, direction}}) + ":40"};
  const Record before = run_one(plain), after = run_one(steered);
  const std::vector<int32_t> generated_before(before.token_ids.begin() + 2, before.token_ids.end());
  const std::vector<int32_t> generated_after(after.token_ids.begin() + 2, after.token_ids.end());
  EXPECT_EQ(std::count(generated_before.begin(), generated_before.end(), token), 0) << "pick another token";
  EXPECT_EQ(generated_after, std::vector<int32_t>(6, token));
  // At the prompt's positions (the same tokens in both runs) t's logit rose, and it is now the top one.
  const Tensor &x = before.sites.at("logits"), &y = after.sites.at("logits");
  for (int64_t r = 0; r < 2; ++r) {
    EXPECT_GT(y.f32()[r * vocab + token], x.f32()[r * vocab + token]) << "position " << r;
    EXPECT_EQ(std::max_element(y.f32() + r * vocab, y.f32() + (r + 1) * vocab) - (y.f32() + r * vocab), token);
  }
  fs::remove_all(tmp);
}

// Two records in one batch, generated tokens included, in both capture modes (stepwise patches each decoding
// step's new position).
TEST(Patching, FromAStoreOfTheSamePromptReproducesTheRunBitForBit) {
  const fs::path tmp = test::temp_dir("patch_same");
  for (const auto& [name, mode] : {std::pair{"llama", "rerun"}, {"gpt2", "rerun"}, {"opt", "stepwise"}}) {
    Capture original = capture_of(reference(name));
    original.input_ids = {"5, 17, 301, 42", "9, 77, 3"};
    original.max_new_tokens = 3;
    original.capture_mode = mode;
    original.out = (tmp / name).string();
    const auto expected = run(original);
    Capture patched = original;
    patched.out = "";
    patched.interventions.patch = {"hidden_states.1,blocks.1.hook_attn_out", "blocks.0.ln2.hook_normalized"};
    patched.interventions.patch_from = original.out;
    const auto got = run(patched);
    ASSERT_EQ(got.size(), 2u);
    for (size_t r = 0; r < 2; ++r) {
      EXPECT_EQ(got[r].token_ids, expected[r].token_ids);
      for (const auto& [site, tensor] : expected[r].sites)
        EXPECT_TRUE(same_bits(tensor, got[r].sites.at(site))) << name << " record " << r << " " << site;
    }
  }
  fs::remove_all(tmp);
}

TEST(Patching, FromAnotherPromptChangesOnlyDownstreamSites) {
  const fs::path tmp = test::temp_dir("patch_other");
  const std::string model = reference("qwen3");
  Capture donor = capture_of(model);
  donor.input_ids = {"400, 2, 250, 11, 60"};
  donor.out = (tmp / "donor").string();
  const Record source = run_one(donor);
  Capture plain = capture_of(model);
  plain.input_ids = {"5, 17, 301, 42, 9"};
  const Record before = run_one(plain);
  Capture patched = plain;
  patched.interventions.patch = {"blocks.1.hook_resid_pre"};  // a view: edited as blocks.0.hook_resid_post
  patched.interventions.patch_from = donor.out;
  const Record after = run_one(patched);

  bool reached = false;
  for (const std::string& site : before.order) {
    if (site == "blocks.0.hook_resid_post") reached = true;
    if (!reached) {
      EXPECT_TRUE(same_bits(before.sites.at(site), after.sites.at(site))) << site << " is upstream of the patch";
    } else if (site == "blocks.0.hook_resid_post" || site == "hidden_states.1" || site == "blocks.1.hook_resid_pre") {
      EXPECT_TRUE(same_bits(source.sites.at(site), after.sites.at(site))) << site << " is not the donor's";
    } else {
      EXPECT_FALSE(same_bits(before.sites.at(site), after.sites.at(site))) << site << " did not change";
    }
  }
  fs::remove_all(tmp);
}

TEST(Ablation, ZeroAndMeanReplaceEveryPosition) {
  const fs::path tmp = test::temp_dir("ablate");
  const std::string model = reference("opt");
  Capture donor = capture_of(model);
  donor.input_ids = {"400, 2, 250", "11, 60, 7, 8, 9"};
  donor.sites = "blocks.0.hook_mlp_out";
  donor.out = (tmp / "donor").string();
  run(donor);
  // The mean over every stored row of both records, computed here from the store.
  StoreReader store(donor.out);
  const int64_t d = hidden_size(model);
  std::vector<double> sum(size_t(d), 0.0);
  int64_t rows = 0;
  for (int64_t r = 0; r < 2; ++r) {
    const Tensor t = store.read_f32(r, "blocks.0.hook_mlp_out");
    for (int64_t p = 0; p < t.shape()[0]; ++p, ++rows)
      for (int64_t i = 0; i < d; ++i) sum[size_t(i)] += t.f32()[p * d + i];
  }
  ASSERT_EQ(rows, 8);

  Capture plain = capture_of(model);
  const Record before = run_one(plain);
  for (const std::string& mode : std::vector<std::string>{"zero", "mean:" + donor.out}) {
    Capture ablated = plain;
    ablated.interventions.ablate = {"blocks.0.hook_mlp_out=" + mode};
    const Record after = run_one(ablated);
    const Tensor& got = after.sites.at("blocks.0.hook_mlp_out");
    for (int64_t p = 0; p < got.shape()[0]; ++p)
      for (int64_t i = 0; i < d; ++i) {
        const float expected = mode == "zero" ? 0.0f : float(sum[size_t(i)] / double(rows));
        ASSERT_EQ(got.f32()[p * d + i], expected) << mode << " position " << p << " element " << i;
      }
    EXPECT_TRUE(same_bits(before.sites.at("blocks.0.hook_attn_out"), after.sites.at("blocks.0.hook_attn_out")));
    EXPECT_FALSE(same_bits(before.sites.at("blocks.0.hook_resid_post"), after.sites.at("blocks.0.hook_resid_post")));
  }
  fs::remove_all(tmp);
}

TEST(InterventionErrors, BadInputsGiveOneLineErrors) {
  const fs::path tmp = test::temp_dir("intervention_errors");
  const std::string model = reference("llama");
  const int64_t d = hidden_size(model);
  Capture base = capture_of(model);
  base.out = (tmp / "store").string();
  auto refused = [&](auto edit, std::initializer_list<std::string_view> fragments) {
    Capture capture = base;
    edit(capture.interventions);
    test::expect_one_line_error([&] { run(capture); }, fragments);
    EXPECT_FALSE(fs::exists(tmp / "store")) << "a refused capture wrote its store";
  };
  const std::string good = write_vector(tmp / "good.safetensors", {{1, pseudo_random(d, 1)}});
  const std::string narrow = write_vector(tmp / "narrow.safetensors", {{1, pseudo_random(d - 1, 1)}});
  const std::string deep = write_vector(tmp / "deep.safetensors", {{2, pseudo_random(d, 1)}});
  {
    SafetensorsWriter writer;
    const std::vector<float> v(size_t(d), 1.0f);
    writer.add("layer.1", DType::F32, {d}, v.data());
    writer.write((tmp / "misnamed.safetensors").string());
  }
  refused([&](auto& o) { o.steer = {(tmp / "missing.safetensors").string()}; }, {"missing.safetensors", "no such"});
  refused([&](auto& o) { o.steer = {narrow + ":2"}; }, {"narrow.safetensors", "direction.1 has 63 values", "64"});
  refused([&](auto& o) { o.steer = {deep}; }, {"deep.safetensors", "direction.2 is out of range", "2 blocks"});
  refused([&](auto& o) { o.steer = {(tmp / "misnamed.safetensors").string()}; }, {"misnamed", "'layer.1'"});
  refused([&](auto& o) { o.steer = {good}; o.steer_layers = "0-2"; }, {"--steer-layers \"0-2\"", "out of range"});
  refused([&](auto& o) { o.steer = {good}; o.steer_layers = "1-0"; }, {"--steer-layers \"1-0\"", "A-B"});
  refused([&](auto& o) { o.steer_layers = "1"; }, {"--steer-layers needs --steer"});
  refused([&](auto& o) { o.ablate = {"blocks.0.hook_mlp_outt=zero"}; },
          {"--ablate: \"blocks.0.hook_mlp_outt\"", "did you mean \"blocks.0.hook_mlp_out\""});
  refused([&](auto& o) { o.ablate = {"blocks.0.hook_mlp_out=one"}; }, {"--ablate", "SITE=zero or SITE=mean:STORE"});
  refused([&](auto& o) { o.ablate = {"logits=zero"}; }, {"logits cannot be edited"});
  refused([&](auto& o) { o.ablate = {"blocks.1.attn.hook_pattern=zero"}; }, {"attention patterns cannot be edited"});
  refused([&](auto& o) { o.ablate = {"hidden_states.2=zero"}; }, {"hidden_states.2", "ln_final.hook_normalized"});
  refused([&](auto& o) { o.patch = {"hidden_states.1"}; }, {"--patch SITE needs --from STORE"});
  refused([&](auto& o) { o.patch_from = (tmp / "nowhere").string(); }, {"--from STORE needs --patch SITE"});

  // Stores to patch from: another prompt length, another site, another model width.
  Capture donor = capture_of(model);
  donor.input_ids = {"1, 2, 3"};
  donor.sites = "hidden_states.1";
  donor.out = (tmp / "short").string();
  run(donor);
  donor.model = reference("tiny-gpt2");
  donor.out = (tmp / "narrow_store").string();
  run(donor);
  refused([&](auto& o) { o.patch = {"hidden_states.1"}; o.patch_from = (tmp / "short").string(); },
          {"record 0 has a prompt of 3 tokens", "has 6"});
  refused([&](auto& o) { o.patch = {"blocks.0.hook_mlp_out"}; o.patch_from = (tmp / "short").string(); },
          {"has no site blocks.0.hook_mlp_out"});
  refused([&](auto& o) { o.ablate = {"hidden_states.1=mean:" + (tmp / "narrow_store").string()}; },
          {"narrow_store", "rows of 32 values", "64"});
  fs::remove_all(tmp);
}

// The same exactness on a GPU, in fp32 (a sum is one IEEE addition there too), and patching from a GPU capture
// of the same prompt reproducing it.
TEST(InterventionsCuda, ZeroVectorShiftAblationAndPatchOnTheGpu) {
#ifdef ACTCAP_HAVE_CUDA
  if (ops::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const fs::path tmp = test::temp_dir("steer_cuda");
  const std::string model = reference("llama");
  const int64_t d = hidden_size(model);
  const auto v = pseudo_random(d, 4);
  Capture plain = capture_of(model);
  plain.device = "cuda";
  Capture zero = plain, steered = plain, ablated = plain;
  zero.interventions.steer = {write_vector(tmp / "zero.safetensors", {{1, std::vector<float>(size_t(d), 0.0f)}})};
  steered.interventions.steer = {write_vector(tmp / "v.safetensors", {{0, v}}) + ":-3"};
  ablated.interventions.ablate = {"blocks.1.attn.hook_z=zero"};
  const Record before = run_one(plain), z = run_one(zero), s = run_one(steered), a = run_one(ablated);
  for (const auto& [site, tensor] : before.sites) EXPECT_TRUE(same_bits(tensor, z.sites.at(site))) << site;
  const Tensor &x = before.sites.at("blocks.0.hook_resid_post"), &y = s.sites.at("blocks.0.hook_resid_post");
  for (int64_t r = 0; r < x.shape()[0]; ++r)
    for (int64_t i = 0; i < d; ++i) {
      const float expected = x.f32()[r * d + i] + rounded_product(v[size_t(i)], -3.0f);
      ASSERT_EQ(std::memcmp(&expected, &y.f32()[r * d + i], sizeof(float)), 0) << "row " << r << " element " << i;
    }
  const Tensor& zeroed = a.sites.at("blocks.1.attn.hook_z");
  for (int64_t i = 0; i < zeroed.numel(); ++i) ASSERT_EQ(zeroed.f32()[i], 0.0f);

  Capture original = plain;
  original.max_new_tokens = 3;
  original.out = (tmp / "original").string();
  const Record expected = run_one(original);
  Capture patched = original;
  patched.out = "";
  patched.interventions.patch = {"hidden_states.1,blocks.0.mlp.hook_post"};
  patched.interventions.patch_from = original.out;
  const Record got = run_one(patched);
  EXPECT_EQ(got.token_ids, expected.token_ids);
  for (const auto& [site, tensor] : expected.sites) EXPECT_TRUE(same_bits(tensor, got.sites.at(site))) << site;
  fs::remove_all(tmp);
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

}  // namespace
}  // namespace actcap
