// `actcap verify` and `actcap ls` on real stores, including damaged ones.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <functional>

#include "capture/store_format.h"
#include "capture/verify.h"
#include "core/error.h"
#include "core/sha256.h"
#include "store_test_util.h"

namespace actcap {
namespace {

using namespace store_test;
using json = nlohmann::json;

struct CliRun {
  int status;
  std::string output;
};

CliRun run_actcap(const std::string& arguments) {
  std::string output;
  std::FILE* pipe = ::popen((std::string(ACTCAP_BINARY) + " " + arguments + " 2>&1").c_str(), "r");
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

class StoreVerify : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.sub("store");
    write_store(options_for(dir_, StoreLayout::PerRecord, DType::F16, 400), 10);
  }
  // Expects `actcap verify` to fail with one line containing `needle`, and verify_store to agree.
  void expect_problem(const std::string& needle) {
    const StoreCheck check = verify_store(dir_);
    EXPECT_FALSE(check.ok);
    EXPECT_NE(check.problem.find(needle), std::string::npos) << check.problem;
    const CliRun run = run_actcap("verify " + dir_);
    EXPECT_EQ(run.status, 1) << run.output;
    EXPECT_EQ(run.output, "actcap: error: " + check.problem + "\n");
  }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  void rewrite(const std::string& name, const std::string& contents) const {
    std::ofstream(file(name), std::ios::binary | std::ios::trunc) << contents;
  }
  // Rewrites the manifest to match the index files as they now are (what a careful forger would do), so that
  // the checks behind the hashes are reached.
  void reseal(const std::function<void(store::Manifest&)>& edit = {}) const {
    store::Manifest manifest = store::Manifest::parse(read_file(file("manifest.json")), "manifest.json");
    for (auto [name, digest] : {std::pair{"records.jsonl", &manifest.records}, {"metadata.jsonl", &manifest.metadata}}) {
      const std::string text = read_file(file(name));
      *digest = store::IndexDigest{sha256_hex(text.data(), text.size()), text.size()};
    }
    if (edit) edit(manifest);
    rewrite("manifest.json", manifest.to_text());
  }
  TempDir tmp_;
  std::string dir_;
};

TEST_F(StoreVerify, AcceptsAWholeStore) {
  const CliRun run = run_actcap("verify " + dir_);
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(run.output.rfind("OK: " + dir_ + ": 10 records, ", 0), 0u) << run.output;
}

TEST_F(StoreVerify, CatchesAFlippedByte) {
  std::string shard = read_file(file("shard-00001.safetensors"));
  shard[shard.size() - 5] ^= 0x10;
  rewrite("shard-00001.safetensors", shard);
  expect_problem("shard-00001.safetensors: SHA-256 ");
}

TEST_F(StoreVerify, CatchesADeletedShard) {
  fs::remove(file("shard-00002.safetensors"));
  expect_problem("shard-00002.safetensors: missing");
}

TEST_F(StoreVerify, CatchesATruncatedMetadataLine) {
  std::string metadata = read_file(file("metadata.jsonl"));
  rewrite("metadata.jsonl", metadata.substr(0, metadata.size() - 20));
  reseal();
  expect_problem("metadata.jsonl: line 10 is truncated");
}

TEST_F(StoreVerify, CatchesADuplicateRecord) {
  for (const char* log : {"records.jsonl", "metadata.jsonl"}) {
    std::string text = read_file(file(log));
    const size_t last = text.rfind('\n', text.size() - 2) + 1;
    rewrite(log, text + text.substr(last));
  }
  reseal();
  expect_problem("record 9 appears twice");
}

TEST_F(StoreVerify, CatchesAMissingRecord) {
  for (const char* log : {"records.jsonl", "metadata.jsonl"}) {
    std::string text = read_file(file(log));
    const size_t first = text.find('\n') + 1, second = text.find('\n', first) + 1;
    rewrite(log, text.substr(0, first) + text.substr(second));
  }
  reseal();
  expect_problem("record 2 where record 1 was expected");
}

TEST_F(StoreVerify, CatchesIndexAndRecordsDisagreeing) {
  std::string text = read_file(file("records.jsonl"));
  const size_t at = text.find("prompt 4");
  ASSERT_NE(at, std::string::npos);
  text[at] = 'P';
  rewrite("records.jsonl", text);
  reseal();
  expect_problem("(record 4): text_sha256");
}

TEST_F(StoreVerify, CatchesWrongOffsets) {
  std::string text = read_file(file("metadata.jsonl"));
  json first = json::parse(text.substr(0, text.find('\n')));
  auto offsets = first["offsets"][kSites[0]].get<std::vector<uint64_t>>();
  first["offsets"][kSites[0]] = {offsets[0] + 2, offsets[1] + 2};
  rewrite("metadata.jsonl", first.dump() + text.substr(text.find('\n')));
  reseal();
  expect_problem("offsets of 'hidden_states.0'");
}

TEST_F(StoreVerify, CatchesAnIncompleteStore) {
  reseal([](store::Manifest& m) { m.complete = false; });
  expect_problem("the store is incomplete");
}

TEST(StoreLs, ListsSitesShapesDtypesAndSizes) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  const auto summary = write_store(options_for(dir, StoreLayout::TokenStream, DType::BF16, 400), 10);
  const CliRun text = run_actcap("ls " + dir);
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("token_stream store, 10 records"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("[T, 2, 3]"), std::string::npos) << text.output;
  const CliRun run = run_actcap("ls --json " + dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const json listing = json::parse(run.output);
  EXPECT_EQ(listing["records"], 10);
  EXPECT_EQ(listing["dtype"], "BF16");
  EXPECT_EQ(listing["shards"], summary.shards);
  ASSERT_EQ(listing["sites"].size(), 2u);
  for (size_t s = 0; s < 2; ++s) {
    const auto& site = listing["sites"][s];
    const auto& expected = summary.sites.at(kSites[s]);
    EXPECT_EQ(site["site"], kSites[s]);
    EXPECT_EQ(site["shape"].get<Shape>(), expected.shape);
    EXPECT_EQ(site["rows"], expected.rows);
    EXPECT_EQ(site["bytes"], expected.bytes);
  }
  const CliRun missing = run_actcap("ls " + tmp.sub("nothing"));
  EXPECT_EQ(missing.status, 1);
}

// The shards are plain safetensors: numpy reads them from the header alone, and the index's byte offsets
// address the same values.
TEST(StorePython, NumpyReadsTheShardsWithoutActcap) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) GTEST_SKIP() << "/usr/bin/python3 with numpy not found";
  for (StoreLayout layout : {StoreLayout::PerRecord, StoreLayout::TokenStream}) {
    TempDir tmp;
    const std::string dir = tmp.sub("store");
    write_store(options_for(dir, layout, DType::F16, 400), 7);
    const std::string script = tmp.sub("read.py");
    std::ofstream(script) << R"(import json, struct, sys
import numpy as np
d = sys.argv[1]
out = {}
shards = {}
for line in open(d + '/metadata.jsonl'):
    m = json.loads(line)
    raw = shards.setdefault(m['shard'], open(d + '/' + m['shard'], 'rb').read())
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    for site, (begin, end) in m['offsets'].items():
        by_offsets = np.frombuffer(raw[begin:end], dtype='<f2')
        name = site if header['__metadata__']['layout'] == 'token_stream' else '%d/%s' % (m['record'], site)
        t = header[name]
        whole = np.frombuffer(raw[8 + n + t['data_offsets'][0]:8 + n + t['data_offsets'][1]], dtype='<f2').reshape(t['shape'])
        lo, hi = m['token_span'] if header['__metadata__']['layout'] == 'token_stream' else (0, t['shape'][0])
        assert (whole[lo:hi].reshape(-1) == by_offsets).all()
        out['%d/%s' % (m['record'], site)] = [float(x) for x in by_offsets]
print(json.dumps(out))
)";
    const CliRun run = [&] {
      std::string output;
      std::FILE* pipe = ::popen(("/usr/bin/python3 " + script + " " + dir + " 2>&1").c_str(), "r");
      char buffer[4096];
      size_t n;
      while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
      const int status = ::pclose(pipe);
      return CliRun{WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
    }();
    ASSERT_EQ(run.status, 0) << run.output;
    const json values = json::parse(run.output);
    ASSERT_EQ(values.size(), 14u);
    for (int64_t r = 0; r < 7; ++r)
      for (const auto& [site, tensor] : sites_of(r)) {
        const auto got = values.at(std::to_string(r) + "/" + site).get<std::vector<float>>();
        ASSERT_EQ(int64_t(got.size()), tensor.numel());
        for (int64_t i = 0; i < tensor.numel(); ++i)
          EXPECT_EQ(got[size_t(i)], f16_to_f32(f32_to_f16(tensor.f32()[i]))) << r << " " << site << " " << i;
      }
  }
}

}  // namespace
}  // namespace actcap
