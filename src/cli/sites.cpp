// actcap sites: every capture site of a model with the shape it is stored with, for a prompt of --tokens tokens,
// after --sites and --layers exactly as `capture` applies them. The shapes come from a forward pass over that
// many tokens, so they are what a capture stores, not a guess from the config.
#include <fmt/format.h>

#include <cstdio>

#include "capture/recorder.h"
#include "capture/sites.h"
#include "cli/command.h"
#include "core/error.h"
#include "generate/generate.h"
#include "io/hub.h"
#include "models/model.h"

namespace actcap {
namespace {

struct SitesOptions {
  std::string model, sites = "all", layers;
  int64_t tokens = 8;
};

// What a site is, where its name alone does not say it: hidden_states are block inputs, except the last.
std::string role(const std::string& site, int num_layers) {
  if (site.rfind("hidden_states.", 0) != 0) return "";
  auto block = block_of_site(site, num_layers);
  return block ? fmt::format("input of block {}{}", *block, *block == 0 ? " (embeddings)" : "")
               : "final norm output (= ln_final.hook_normalized)";
}

void list_sites(const SitesOptions& options) {
  if (options.tokens < 1) fail("--tokens must be at least 1, got {}", options.tokens);
  auto model = Model::load(resolve_model(options.model).dir);
  if (model->max_positions() > 0 && options.tokens > model->max_positions())
    fail("--tokens {}: {} has {} positions", options.tokens, options.model, model->max_positions());
  SiteSelection selection = SiteSelection::parse(options.sites, options.layers, "all", *model);
  const int num_layers = int(model->config().num_hidden_layers);

  std::vector<int32_t> prompt;
  for (int64_t i = 0; i < options.tokens; ++i) prompt.push_back(int32_t(i % model->config().vocab_size));
  Recorder recorder;
  generate(*model, {prompt}, GenerationOptions{}, &selection, CaptureMode::Rerun, &recorder);
  auto taken = recorder.take(0, int(prompt.size()), int(prompt.size()));

  std::printf("%s: %s, %d layers; shapes for a prompt of %lld tokens (T = %lld)\n", options.model.c_str(),
              model->config().model_type.c_str(), num_layers, static_cast<long long>(options.tokens),
              static_cast<long long>(options.tokens));
  size_t width = 4;
  for (const auto& [site, tensor] : taken.sites) width = std::max(width, site.size());
  for (const auto& [site, tensor] : taken.sites) {
    std::string shape = "[";
    for (size_t d = 0; d < tensor.shape().size(); ++d) shape += (d ? ", " : "") + std::to_string(tensor.shape()[d]);
    shape += "]";
    std::string line = fmt::format("{:<{}}  {:<16}  {}", site, width, shape, role(site, num_layers));
    line.erase(line.find_last_not_of(' ') + 1);
    std::printf("%s\n", line.c_str());
  }
  std::printf("%zu sites (of %zu); captured per record as [T_kept, ...], attention patterns as [H, T_kept, T]\n",
              taken.sites.size(), model->site_names().size());
}

void setup(CLI::App& command) {
  static SitesOptions options;
  command.footer(R"(
Examples:
  actcap sites --model M                                   # every site
  actcap sites --model M --sites 'blocks.*.hook_resid_post' --layers recommended
  actcap sites --model M --layers -1 --tokens 32
--layers K keeps blocks.K.* and hidden_states.K (the input of block K) and the sites outside the blocks; see
`actcap capture --help`.)");
  command.add_option("--model", options.model, "Hugging Face model folder, or a hub model org/name[@revision]")->required();
  command.add_option("--sites", options.sites, "comma-separated globs over site names (default all)");
  command.add_option("--layers", options.layers, "blocks to keep: 0,2,5-7 | -1 | recommended");
  command.add_option("--tokens", options.tokens, "prompt length T for the shapes (default 8)");
  command.callback([] { list_sites(options); });
}

const cli::CommandRegistration registration("sites", "list a model's capture sites and their shapes", setup);

}  // namespace
}  // namespace actcap
