#pragma once
// Models named on the Hugging Face hub ("org/name[@revision]"): resolved in the HF cache exactly as
// huggingface_hub lays it out (models--org--name/{refs,snapshots,blobs}), and downloaded into that cache when
// missing, so that HF's own libraries and actcap share one copy.
#include <functional>
#include <string>
#include <vector>

namespace actcap {

// Where the cache is and how to reach the hub, from the environment as huggingface_hub reads it:
// HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), HF_TOKEN and $HF_HOME/token.
struct HubSettings {
  std::string cache_dir;
  std::string endpoint;  // no trailing slash
  std::string token;     // empty: anonymous
  std::string token_file;
  bool offline = false;
  static HubSettings from_environment();
};

// What a model argument resolved to: the folder to load, and for a hub name the repo, revision and commit.
struct ResolvedModel {
  std::string dir;
  std::string repo_id;  // empty for a plain local folder
  std::string revision;
  std::string commit;
};

// "org/name" or "org/name@revision"; revision defaults to "main". Returns false when `name` is not of that form.
bool parse_repo_name(const std::string& name, std::string& repo_id, std::string& revision);

// The single entry point that every command uses to turn a --model argument into a folder: an existing folder is
// taken as it is (a cache repo folder models--org--name means its refs/main snapshot); org/name[@rev] is looked
// up in the cache, then downloaded unless offline. Throws actcap::Error with a one-line message.
ResolvedModel resolve_model(const std::string& name);

struct DownloadOptions {
  std::vector<std::string> include;  // fnmatch globs; empty: the files a capture needs
  int parallel_files = 4;
  bool progress = false;  // a progress line on stderr
};

// Downloads repo_id@revision's files into the cache (resuming partial blobs) and returns the snapshot.
ResolvedModel download_model(const std::string& repo_id, const std::string& revision, const HubSettings& settings,
                             const DownloadOptions& options);

// True when a capture could load `file` (config, tokenizer files, safetensors weights; never pickled weights).
bool needed_for_capture(const std::string& file);

}  // namespace actcap
