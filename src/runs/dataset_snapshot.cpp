#include "runs/dataset_snapshot.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/sha256.h"

namespace actcap::runs {
namespace {

namespace fs = std::filesystem;

struct Group {
  nlohmann::ordered_json json;
  std::string lines;  // "<sha256>  <prefix><path>\n" per file, for the dataset hash
};

Group snapshot_folder(const std::string& dir, const char* option, const std::string& prefix) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) fail("{}: {} is not a folder", dir, option);
  std::vector<std::string> paths;
  for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
    if (it->is_regular_file()) paths.push_back(fs::relative(it->path(), dir).generic_string());
  if (error) fail("{}: cannot list: {}", dir, error.message());
  if (paths.empty()) fail("{}: {} holds no file to snapshot", dir, option);
  std::sort(paths.begin(), paths.end());

  Group group;
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  std::string own_lines;
  for (const auto& path : paths) {
    if (path.find('\n') != std::string::npos) fail("{}: a file name holds a newline: {}", dir, path);
    const std::string full = (fs::path(dir) / path).string();
    const std::string hash = sha256_file(full);
    files.push_back({{"path", path}, {"bytes", fs::file_size(full)}, {"sha256", hash}});
    own_lines += hash + "  " + path + "\n";
    group.lines += hash + "  " + prefix + path + "\n";
  }
  group.json = {{"files", files}, {"sha256", sha256_hex(own_lines.data(), own_lines.size())}};
  return group;
}

}  // namespace

nlohmann::ordered_json snapshot_dataset(const std::string& prompts_dir, const std::string& samples_dir) {
  const Group prompts = snapshot_folder(prompts_dir, "--prompts-dir", "prompts/");
  const Group samples = snapshot_folder(samples_dir, "--samples-dir", "samples/");
  const std::string all = prompts.lines + samples.lines;
  return {{"snapshot_version", 1},
          {"prompts", prompts.json},
          {"samples", samples.json},
          {"dataset_sha256", sha256_hex(all.data(), all.size())}};
}

}  // namespace actcap::runs
