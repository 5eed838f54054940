// actcap export pt STORE --out DIR: each record as the original capture tool's `<model>_activations.pt`
// (export/torch_export.h), which torch.load(path, weights_only=True) reads.
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/export_options.h"
#include "core/error.h"
#include "export/export_folder.h"
#include "export/integers.h"
#include "export/output_names.h"
#include "export/site_arrays.h"
#include "export/torch_export.h"

namespace actcap::cli {
namespace {

namespace fs = std::filesystem;

struct Options {
  StoreInputOptions input;
  std::string out;
};

std::optional<std::string> optional_text(const nlohmann::json& record, const char* key) {
  if (!record.contains(key) || !record[key].is_string()) return std::nullopt;
  return record[key].get<std::string>();
}

void run(const Options& options) {
  const std::unique_ptr<StoreReader> store = options.input.open();
  const Selection selection = select(*store, options.input, {"all"});
  const std::string model_path = store->manifest().value("model", nlohmann::json::object()).value("path", "");
  const std::string file_name = model_file_prefix(model_path) + "_activations.pt";
  const std::vector<std::string> chain = hidden_state_chain(selection.sites);

  ExportFolder folder(options.out);
  nlohmann::json files = nlohmann::json::array();
  size_t without_hidden_states = 0;
  for (int64_t r : selection.records) {
    const nlohmann::json& record = store->record(r);
    TorchActivations activations;
    activations.model_name = model_path;
    activations.prompt = optional_text(record, "text");
    activations.generated_text = optional_text(record, "generated_text");
    activations.token_sequence = record.at("token_ids").get<std::vector<int64_t>>();
    activations.record = r;
    activations.positions = record.at("positions").get<std::vector<int64_t>>();
    std::vector<SiteArray> sites;
    for (const std::string& site : selection.sites) {
      sites.push_back(gather_site(*store, site, {r}, RecordLayout::Single));
      activations.activations.emplace_back(site, TensorView{sites.back().pieces[0].data, sites.back().dtype, sites.back().shape});
    }
    // The original tool's hidden_states tuple holds every token: written only when the record kept them all.
    bool every_position = activations.positions.size() == activations.token_sequence.size();
    for (size_t i = 0; every_position && i < activations.positions.size(); ++i)
      every_position = activations.positions[i] == int64_t(i);
    if (every_position && !chain.empty()) {
      for (const std::string& site : chain) activations.hidden_states.push_back(store->view(r, site));
    } else {
      ++without_hidden_states;
    }
    // One record: OUT/<model>_activations.pt as the original tool; several: OUT/record-<N>/<model>_activations.pt.
    std::string relative = file_name;
    if (selection.records.size() > 1) {
      relative = fmt::format("record-{}/{}", r, file_name);
      fs::create_directories(fs::path(folder.path(relative)).parent_path());
    }
    write_torch_activations(folder.path(relative), activations);
    files.push_back({{"file", relative}, {"record", r}, {"hidden_states", activations.hidden_states.size()}});
  }
  nlohmann::json description = export_description("pt", *store, selection);
  description["pt_files"] = files;
  folder.commit(description);
  fmt::print("wrote {} file{} to {}: {} site{} per record ({})\n", files.size(), files.size() == 1 ? "" : "s",
             folder.out(), selection.sites.size(), selection.sites.size() == 1 ? "" : "s",
             torch_dtype_name(store->dtype()));
  if (without_hidden_states)
    fmt::print("note: {} of the files lack the 'hidden_states' tuple ({}); every site is under 'activations'\n",
               without_hidden_states,
               chain.empty() ? "hidden_states.* were not selected" : "the record keeps only some positions");
}

CommandRegistration registration(
    "export pt", "records as <model>_activations.pt, every selected site included (torch.load(..., weights_only=True))",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      options->input.add_to(command, "every site");
      command.add_option("--out", options->out, "output folder (created; an earlier export there is replaced)")
          ->required();
      command.footer(
          "Writes OUT/<model>_activations.pt for one record, OUT/record-<N>/<model>_activations.pt for each of\n"
          "several. Each is a dict (tensors keep the stored dtype, bf16 included):\n"
          "  model_name, prompt, generated_text, token_sequence (1, seq_len)\n"
          "  hidden_states  the original tool's tuple: [0] embedding output, [i] output of block i-1, the last the\n"
          "                 final norm's output; each (1, seq_len, hidden); only when hidden_states.* were captured\n"
          "                 at every position\n"
          "  record, positions (the kept positions)\n"
          "  activations    {site: (1, T_kept, ...)}, attention patterns (1, heads, T_kept, seq_len)\n"
          "Example: actcap export pt out/demo --out pt/\n"
          "  python3 -c \"import torch; d = torch.load('pt/tiny-gpt2_activations.pt', weights_only=True); "
          "print(list(d['activations']))\"");
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
