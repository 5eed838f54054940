// The export commands end to end: stores are written from what Hugging Face computed for the tiny Llama
// (tests/data/reference/llama), exported through the actcap binary, and read back with numpy by
// tests/exports/check_exports.py (decimal oracle, hypercube map of every element, zkLLM files and weights).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "capture/store_writer.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "export/zkllm.h"
#include "io/safetensors.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

const std::string kLlama = std::string(ACTCAP_TEST_DATA) + "/reference/llama";

std::vector<std::string> llama_sites() {
  std::vector<std::string> sites = {"hidden_states.0", "hidden_states.1", "hidden_states.2"};
  for (int i = 0; i < 2; ++i)
    for (const char* s : {"hook_resid_pre", "ln1.hook_normalized", "hook_resid_mid", "ln2.hook_normalized",
                          "hook_mlp_out", "hook_resid_post"})
      sites.push_back("blocks." + std::to_string(i) + "." + s);
  return sites;
}

// A store of the reference activations of cases s0 (6 tokens) and s1 (19 tokens).
void write_reference_store(const std::string& dir, DType dtype, bool poison = false) {
  SafetensorsFile reference(kLlama + "/reference.safetensors");
  StoreOptions options;
  options.dir = dir;
  options.dtype = dtype;
  options.sites = llama_sites();
  StoreWriter writer(options, {{"model", {{"path", kLlama}, {"model_type", "llama"}}}, {"seed", 0}});
  int64_t record = 0;
  for (const char* c : {"s0", "s1"}) {
    const TensorView ids = reference.view(std::string(c) + "/input_ids");
    RecordInfo info;
    info.record = record;
    info.id = c;
    for (int64_t i = 0; i < ids.numel(); ++i) info.token_ids.push_back(int32_t(static_cast<const int64_t*>(ids.data)[i]));
    info.n_prompt = int(info.token_ids.size());
    for (int64_t t = 0; t < ids.numel(); ++t) info.positions.push_back(t);
    info.extra = {{"text", std::string("prompt ") + c}, {"generated_text", ""}};
    std::vector<std::pair<std::string, Tensor>> sites;
    for (const std::string& site : options.sites) {
      sites.emplace_back(site, Tensor::copy_of(reference.view(std::string(c) + "/" + site)));
      if (poison && site == "hidden_states.1") sites.back().second.f32()[70] = std::numeric_limits<float>::infinity();
    }
    writer.add_record(info, sites);
    ++record;
  }
  writer.finish();
}

int run(const std::string& arguments, std::string* output = nullptr) {
  const std::string log = fs::temp_directory_path() / ("actcap-exports-cli-" + std::to_string(::getpid()) + ".log");
  const int status = std::system((std::string(ACTCAP_BINARY) + " " + arguments + " >" + log + " 2>&1").c_str());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  if (output) *output = text.str();
  if (status != 0) std::cerr << text.str();
  fs::remove(log);
  return status;
}

class ExportsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = fs::temp_directory_path() / ("actcap-exports-cli-" + std::to_string(::getpid()));
    fs::remove_all(work_);
    fs::create_directories(work_);
  }
  void TearDown() override { fs::remove_all(work_); }
  std::string at(const std::string& name) const { return (work_ / name).string(); }
  fs::path work_;
};

TEST_F(ExportsCli, IntegersHypercubeAndZkllmReadBackWithNumpy) {
  if (std::system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) GTEST_SKIP() << "no numpy";
  write_reference_store(at("store"), DType::F32);
  write_reference_store(at("store_bf16"), DType::BF16);
  const std::string hidden = " --sites 'hidden_states.*'";
  ASSERT_EQ(run("export integers " + at("store") + " --out " + at("ints") + " --record 1" + hidden), 0);
  ASSERT_EQ(run("export integers " + at("store") + " --out " + at("ints_fixed") + " --record 1 --format fixed" + hidden), 0);
  ASSERT_EQ(run("export integers " + at("store") + " --out " + at("ints_i64") + " --record 1 --format int64 --quantize 50" + hidden), 0);
  ASSERT_EQ(run("export integers " + at("store_bf16") + " --out " + at("ints_bf16") + " --record 0" + hidden), 0);
  ASSERT_EQ(run("export integers " + at("store") + " --out " + at("ints_rows")), 0);  // every site and record
  ASSERT_EQ(run("export hypercube " + at("ints_rows") + " --out " + at("cube_rows")), 0);
  ASSERT_EQ(run("export hypercube " + at("ints") + " --out " + at("cube") + " --pad-seed 5"), 0);
  ASSERT_EQ(run("export hypercube " + at("ints_fixed") + " --out " + at("cube_fixed") + " --num-dims 5"), 0);
  std::string out;
  ASSERT_EQ(run("export zkllm " + at("store") + " --out " + at("zk") + " --record 1 --pad-to-pow2 --weights", &out), 0);
  EXPECT_NE(out.find("seq_len 32"), std::string::npos) << out;
  ASSERT_EQ(run("export zkllm " + at("store") + " --out " + at("zk6") + " --record 0", &out), 0);
  EXPECT_NE(out.find("seq_len 6"), std::string::npos) << out;
  EXPECT_NE(out.find("not a power of two"), std::string::npos) << out;
  // Every file named with its site on stdout (the names are the prover's, not ours).
  EXPECT_NE(out.find("layer-0-post_attention-rmsnorm-activation.bin  blocks.0.hook_resid_mid"), std::string::npos) << out;
  ASSERT_EQ(run("export zkllm " + at("store") + " --out " + at("zk12") + " --record 0 --scale-bits 12", &out), 0);
  EXPECT_NE(run("export zkllm " + at("store") + " --out " + at("zk40") + " --scale-bits 31", &out), 0);
  EXPECT_NE(out.find("--scale-bits 31"), std::string::npos) << out;
  // Several records: one folder each.
  ASSERT_EQ(run("export zkllm " + at("store") + " --out " + at("zk_all"), &out), 0);
  EXPECT_TRUE(fs::exists(at("zk_all/record-1/layer-1-block-output.bin")));
  EXPECT_TRUE(fs::exists(at("zk_all/record-0/zkllm_metadata.json")));

  const std::string command = std::string("/usr/bin/python3 ") + ACTCAP_SOURCE_DIR + "/tests/exports/check_exports.py " +
                              ACTCAP_BINARY + " " + work_.string() + " " + kLlama;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

TEST_F(ExportsCli, HypercubeLocateMapsBothWays) {
  write_reference_store(at("store"), DType::F32);
  // 3 layers of 1 x 6 x 64: N = 1152
  ASSERT_EQ(run("export integers " + at("store") + " --out " + at("ints") + " --record 0 --sites 'hidden_states.*'"), 0);
  std::string out;
  ASSERT_EQ(run("export hypercube " + at("ints") + " --out " + at("cube"), &out), 0);
  EXPECT_NE(out.find("Optimal shape: (6, 6, 6, 6)"), std::string::npos) << out;  // 1296: the least padding
  ASSERT_EQ(run("hypercube locate " + at("cube") + " --layer layer_0 --position 0,2,5", &out), 0);
  // layer_0 starts at 384; [0, 2, 5] is 133 within it: flat 517
  EXPECT_NE(out.find("flat: 517\n"), std::string::npos) << out;
  EXPECT_NE(out.find("position: [0, 2, 5]"), std::string::npos) << out;
  EXPECT_NE(out.find("site: hidden_states.1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("axes: batch 0, position 2, hidden 5\n"), std::string::npos) << out;
  ASSERT_EQ(run("hypercube locate " + at("cube") + " --flat 517", &out), 0);
  EXPECT_NE(out.find("layer: layer_0"), std::string::npos) << out;
  EXPECT_NE(run("hypercube locate " + at("cube") + " --coord 1,2"), 0);
}

TEST_F(ExportsCli, NonFiniteValueFailsWithoutPartialOutput) {
  write_reference_store(at("store"), DType::F32, /*poison=*/true);
  std::string out;
  EXPECT_NE(run("export integers " + at("store") + " --out " + at("ints"), &out), 0);
  EXPECT_NE(out.find("layer_0"), std::string::npos) << out;
  EXPECT_NE(out.find("[1, 6]"), std::string::npos) << out;  // element 70 of the rows [25, 64]
  EXPECT_FALSE(fs::exists(at("ints")));
  EXPECT_NE(run("export integers " + at("store") + " --record 0 --out " + at("ints"), &out), 0);
  EXPECT_NE(out.find("[0, 1, 6]"), std::string::npos) << out;  // element 70 of [1, 6, 64]
  EXPECT_FALSE(fs::exists(at("ints")));
  for (const auto& entry : fs::directory_iterator(work_))  // nor a temporary folder
    EXPECT_EQ(entry.path().filename().string().find("ints."), std::string::npos) << entry.path();
  EXPECT_NE(run("export integers " + at("store") + " --out " + at("x") + " --quantize 120"), 0);
  EXPECT_NE(run("export integers " + at("store") + " --out " + at("x") + " --format int64"), 0);
}

TEST(ExportsZkllm, FixedPointRoundsHalfToEvenAndRefusesOverflow) {
  const std::vector<float> values = {0.5f / 65536, 1.5f / 65536, -2.5f / 65536, 1.0f, -32768.0f, 32767.99609375f};
  std::vector<int32_t> out(values.size());
  to_zkllm_fixed_point(TensorView{values.data(), DType::F32, {6}}, out.data(), "test");
  EXPECT_EQ(out, (std::vector<int32_t>{0, 2, -2, 65536, INT32_MIN, 2147483392}));
  const std::vector<float> big = {0.0f, 32768.0f};
  EXPECT_THROW(to_zkllm_fixed_point(TensorView{big.data(), DType::F32, {2}}, out.data(), "test"), Error);
  EXPECT_EQ(zkllm_activation_file(3, zkllm_activations()[2]), "layer-3-post_attention-rmsnorm-activation.bin");
  EXPECT_EQ(zkllm_activation_site(3, zkllm_activations()[3]), "blocks.3.ln2.hook_normalized");
  EXPECT_EQ(zkllm_weight_file(0, "self_attn.q_proj.weight"), "layer-0-self_attn.q_proj.weight-int.bin");
}

}  // namespace
}  // namespace actcap
