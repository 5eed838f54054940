#include "analysis/concept_capture.h"

#include <filesystem>

#include "capture/sites.h"
#include "capture/store_format.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/hub.h"
#include "models/config.h"
#include "tokenizer/tokenizer.h"

namespace actcap {
namespace fs = std::filesystem;

namespace {

bool has_chat_template(const std::string& model_dir) {
  if (!fs::exists(fs::path(model_dir) / "tokenizer.json")) return false;
  return Tokenizer::load(model_dir).chat_template().has_value();
}

std::string prompts_jsonl(const ConceptCaptureOptions& options, const std::vector<ContrastPrompt>& pairs) {
  std::string text;
  for (size_t i = 0; i < pairs.size(); ++i)
    for (const char* side : {"positive", "negative"}) {
      const bool positive = side[0] == 'p';
      nlohmann::json meta = {{"concept", options.concept_name}, {"side", side}, {"pair", i}};
      if (pairs[i].persona >= 0) meta.update({{"persona", pairs[i].persona}, {"prompt", pairs[i].prompt}});
      const nlohmann::json line = {{"id", fmt::format("{}/{}/{}", options.concept_name, i, side)},
                                   {"text", positive ? pairs[i].positive : pairs[i].negative},
                                   {"meta", meta}};
      text += line.dump() + "\n";
    }
  return text;
}

}  // namespace

CaptureJob prepare_concept_capture(const ConceptCaptureOptions& options, const std::vector<ContrastPrompt>& pairs) {
  if (pairs.empty()) fail("{}: no pairs to capture", options.out);
  if (options.positions != "last" && options.positions != "mean")
    fail("--positions \"{}\": expected last or mean", options.positions);
  const std::string model_dir = resolve_model(options.model).dir;
  const ModelConfig config = ModelConfig::load(model_dir);
  const int num_layers = int(config.num_hidden_layers);
  std::string sites;
  const std::set<int> blocks = options.layers.empty() ? std::set<int>{} : parse_layers(options.layers, num_layers);
  for (int k = 0; k < num_layers; ++k) {
    if (!options.layers.empty() && !blocks.count(k)) continue;
    if (!sites.empty()) sites += ',';
    sites += fmt::format("hidden_states.{}", k + 1);
  }

  const fs::path out(options.out), store = out / "store";
  if (fs::exists(store / store::kManifestFile) && !options.resume && !options.overwrite)
    fail("{}: already holds a concept store (--overwrite replaces it, --resume continues it)", store.string());
  CaptureJob job;
  job.models = {options.model};
  job.chat = options.use_chat_template && has_chat_template(model_dir);
  job.sites = sites;
  job.positions = options.positions == "last" ? "last-prompt" : "prompt";
  job.device = options.device;
  job.dtype = options.dtype;
  job.threads = options.threads;
  job.resume = options.resume;
  job.overwrite = options.overwrite;
  job.out = store.string();
  job.command_line = options.command_line;
  job.tool = options.tool;
  const std::string prompts = (out / "prompts.jsonl").string(), text = prompts_jsonl(options, pairs);
  if (options.resume && fs::exists(prompts) && read_file(prompts) != text)
    fail("{}: --resume needs the interrupted run's pairs (same concept or files, --max-samples): these differ",
         prompts);
  fs::create_directories(out);
  write_file_atomic(prompts, text);
  job.sources = {{InputSource::Kind::Jsonl, prompts}};
  return job;
}

std::string concept_store_dir(const std::string& path) {
  const fs::path dir(path);
  if (!fs::exists(dir / store::kManifestFile) && fs::exists(dir / "store" / store::kManifestFile))
    return (dir / "store").string();
  return path;
}

}  // namespace actcap
