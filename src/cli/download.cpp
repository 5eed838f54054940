// actcap download org/name[@revision]: the files a capture needs (or those --include names) into the Hugging
// Face cache, in huggingface_hub's layout; resumes partial files and checks each against the hub's hash.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "io/hub.h"

namespace actcap::cli {
namespace {

struct DownloadCommand {
  std::string name;
  std::vector<std::string> include;
  int parallel = 4;
};

void run(const DownloadCommand& command) {
  std::string repo_id, revision;
  if (!parse_repo_name(command.name, repo_id, revision))
    fail("{}: not a hub model name (org/name or org/name@revision)", command.name);
  DownloadOptions options;
  options.include = command.include;
  options.parallel_files = command.parallel;
  options.progress = isatty(STDERR_FILENO);
  ResolvedModel model = download_model(repo_id, revision, HubSettings::from_environment(), options);
  std::printf("%s\n", model.dir.c_str());
}

void setup(CLI::App& cmd) {
  auto options = std::make_shared<DownloadCommand>();
  cmd.footer(R"(
Examples:
  actcap download openai-community/gpt2      # prints the snapshot folder
  actcap download Qwen/Qwen3-0.6B@main --include '*.json'
The cache is huggingface_hub's: HF_HOME / HF_HUB_CACHE; the hub is HF_ENDPOINT; gated models need HF_TOKEN or
the token file ($HF_HOME/token).)");
  cmd.add_option("name", options->name, "org/name or org/name@revision (branch, tag or commit)")->required();
  cmd.add_option("--include", options->include, "only the files matching these globs (default: what a capture needs)")
      ->delimiter(',');
  cmd.add_option("--parallel", options->parallel, "files downloaded at once")->check(CLI::Range(1, 64));
  cmd.callback([options] { run(*options); });
}

const CommandRegistration registration("download", "download a hub model into the Hugging Face cache", setup);

}  // namespace
}  // namespace actcap::cli
