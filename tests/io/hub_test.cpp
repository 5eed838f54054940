// Hub model names and the HF cache layout, without a network: name parsing, the environment as huggingface_hub
// reads it, and resolution of cache folders (repo folder, snapshot, refs) to what they hold.
#include "io/hub.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace actcap {
namespace {
namespace fs = std::filesystem;

TEST(HubNames, OrgNameAndRevision) {
  std::string repo, revision;
  ASSERT_TRUE(parse_repo_name("Qwen/Qwen3-0.6B", repo, revision));
  EXPECT_EQ(repo, "Qwen/Qwen3-0.6B");
  EXPECT_EQ(revision, "main");
  ASSERT_TRUE(parse_repo_name("org/name@v1.0", repo, revision));
  EXPECT_EQ(revision, "v1.0");
  for (const char* bad : {"name", "/name", "org/", "a/b/c", "org/name@", "org/../x", "org/na me", "org/n@a/../b"})
    EXPECT_FALSE(parse_repo_name(bad, repo, revision)) << bad;
}

TEST(HubNames, CaptureFilesNeverPickles) {
  for (const char* file : {"config.json", "model.safetensors", "model-00001-of-00002.safetensors",
                           "model.safetensors.index.json", "tokenizer.json", "generation_config.json"})
    EXPECT_TRUE(needed_for_capture(file)) << file;
  for (const char* file : {"pytorch_model.bin", "README.md", "onnx/model.safetensors", "model.pt", ".gitattributes"})
    EXPECT_FALSE(needed_for_capture(file)) << file;
}

class HubEnvironment : public testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("actcap_hub_test_" + std::to_string(::getpid()));
    fs::create_directories(root_);
    for (const char* name : {"HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "HF_HUB_OFFLINE",
                             "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"})
      ::unsetenv(name);
    ::setenv("HF_HOME", root_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("HF_HOME");
    ::unsetenv("HF_HUB_OFFLINE");
    ::unsetenv("TRANSFORMERS_OFFLINE");
    fs::remove_all(root_);
  }
  void write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }
  fs::path root_;
};

TEST_F(HubEnvironment, SettingsFollowHuggingfaceHub) {
  write(root_ / "token", "hf_fromfile\n");
  ::setenv("HF_ENDPOINT", "http://127.0.0.1:1/", 1);
  ::setenv("TRANSFORMERS_OFFLINE", "yes", 1);
  HubSettings settings = HubSettings::from_environment();
  EXPECT_EQ(settings.cache_dir, (root_ / "hub").string());
  EXPECT_EQ(settings.endpoint, "http://127.0.0.1:1");
  EXPECT_EQ(settings.token, "hf_fromfile");
  EXPECT_TRUE(settings.offline);
  ::setenv("HF_HUB_OFFLINE", "0", 1);  // hides TRANSFORMERS_OFFLINE
  ::setenv("HF_TOKEN", "hf_env", 1);
  ::setenv("HF_HUB_CACHE", "/elsewhere", 1);
  settings = HubSettings::from_environment();
  EXPECT_FALSE(settings.offline);
  EXPECT_EQ(settings.token, "hf_env");
  EXPECT_EQ(settings.cache_dir, "/elsewhere");
  ::unsetenv("HF_ENDPOINT");
  ::unsetenv("HF_TOKEN");
  ::unsetenv("HF_HUB_CACHE");
  EXPECT_EQ(HubSettings::from_environment().endpoint, "https://huggingface.co");
}

TEST_F(HubEnvironment, ResolvesCacheFoldersRefsAndSnapshots) {
  const std::string commit(40, 'a');
  const fs::path repo = root_ / "hub" / "models--org--tiny";
  const fs::path snapshot = repo / "snapshots" / commit;
  write(snapshot / "config.json", "{}");
  write(snapshot / "model.safetensors", "x");
  write(repo / "refs" / "main", commit);  // no newline, as huggingface_hub writes it
  ::setenv("HF_HUB_OFFLINE", "1", 1);

  for (const std::string& name : {std::string("org/tiny"), "org/tiny@" + commit, repo.string(), snapshot.string()}) {
    ResolvedModel model = resolve_model(name);
    EXPECT_EQ(fs::path(model.dir), snapshot) << name;
    EXPECT_EQ(model.repo_id, "org/tiny") << name;
    EXPECT_EQ(model.commit, commit) << name;
  }
  EXPECT_EQ(resolve_model("org/tiny").revision, "main");

  // A local folder is taken as it is, without hub provenance.
  ResolvedModel local = resolve_model(root_.string());
  EXPECT_EQ(local.dir, root_.string());
  EXPECT_TRUE(local.repo_id.empty());

  // Offline: a missing revision or an incomplete snapshot is an error naming the model, never a download.
  EXPECT_THROW(resolve_model("org/tiny@v2"), Error);
  fs::remove(snapshot / "model.safetensors");
  EXPECT_THROW(resolve_model("org/tiny"), Error);
  EXPECT_THROW(resolve_model("not a name"), Error);
}

}  // namespace
}  // namespace actcap
