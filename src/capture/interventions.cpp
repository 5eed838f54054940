#include "capture/interventions.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <optional>

#include "capture/sink.h"
#include "capture/sites.h"
#include "capture/steering_vectors.h"
#include "capture/store_reader.h"
#include "core/error.h"
#include "core/sha256.h"
#include "models/model.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

std::string canonical(const std::string& path) { return fs::weakly_canonical(fs::absolute(path)).string(); }

// A whole non-negative integer, or -1.
int parse_index(std::string_view text) {
  int value = -1;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && value >= 0 ? value : -1;
}

// N of "<prefix>N<suffix>", or -1.
int numbered(const std::string& site, std::string_view prefix, std::string_view suffix) {
  if (site.size() <= prefix.size() + suffix.size() || site.compare(0, prefix.size(), prefix) != 0 ||
      site.compare(site.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  return parse_index(std::string_view(site).substr(prefix.size(), site.size() - prefix.size() - suffix.size()));
}

// FILE[:scale]: the scale is what follows the last ':' when it is a number.
std::pair<std::string, float> parse_steer(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos) {
    const std::string number = text.substr(colon + 1);
    float scale = 0;
    auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), scale);
    if (!number.empty() && error == std::errc() && end == number.data() + number.size())
      return {text.substr(0, colon), scale};
  }
  return {text, 1.0f};
}

// --steer-layers A-B or N: llama.cpp's --control-vector-layer-range (inclusive), in block numbers.
std::pair<int, int> parse_layer_range(const std::string& text, int layers) {
  const size_t dash = text.find('-');
  const int first = parse_index(text.substr(0, dash));
  const int last = dash == std::string::npos ? first : parse_index(std::string_view(text).substr(dash + 1));
  if (first < 0 || last < 0 || last < first)
    fail("--steer-layers \"{}\": give an inclusive range of blocks A-B (e.g. 2-5) or one block N", text);
  if (last >= layers)
    fail("--steer-layers \"{}\": block {} is out of range (the model has {} blocks, 0 to {})", text, last, layers,
         layers - 1);
  return {first, last};
}

std::string whose(const Model& model) { return fmt::format("this {} model", model.config().model_type); }

// The sites `patterns` (given to `option`) picks among the model's.
std::vector<std::string> model_sites(const std::string& patterns, const Model& model, const std::string& option) {
  return match_site_globs(patterns, model.site_names(), whose(model), "`actcap sites --model DIR`", option);
}

// Row widths of `sites`, from a one-token pass with nothing edited.
class WidthProbe : public ActivationSink {
 public:
  std::map<std::string, int64_t> widths;
  void on_activation(int, const std::string& site, int64_t, const TensorView& rows) override {
    widths[site] = rows.shape[0] > 0 ? rows.numel() / rows.shape[0] : 0;
  }
};

void* advance(void* p, int64_t elements, const ops::Backend& backend) {
  return static_cast<char*>(p) + elements * int64_t(dtype_size(backend.dtype()));
}

// Every one of the pass's rows [rows, width] at `dst` becomes `row`: one upload, then copies doubling the
// filled prefix.
void fill_rows(ops::Backend& backend, void* dst, const std::vector<float>& row, int64_t rows) {
  const int64_t width = int64_t(row.size());
  if (rows <= 0) return;
  backend.upload(row.data(), width, dst);
  for (int64_t filled = 1; filled < rows;) {
    const int64_t count = std::min(filled, rows - filled);
    backend.copy_rows(advance(dst, filled * width, backend), width, dst, width, width, count);
    filled += count;
  }
}

}  // namespace

std::string edit_point(const std::string& site, const Model& model, const std::string& option) {
  const int layers = int(model.config().num_hidden_layers);
  if (site == "logits") fail("{} {}: logits cannot be edited (nothing in the forward pass reads them)", option, site);
  if (site.ends_with(".attn.hook_pattern"))
    fail("{} {}: attention patterns cannot be edited (they are computed inside the attention op; edit attn.hook_z)",
         option, site);
  if (site.ends_with(".mlp.hook_expert_indices") || site.ends_with(".mlp.hook_expert_weights"))
    fail("{} {}: a router's choices cannot be edited (they are made from the router logits; edit "
         "mlp.hook_router_logits)", option, site);
  int block = numbered(site, "hidden_states.", "");
  if (block < 0) {
    const int pre = numbered(site, "blocks.", ".hook_resid_pre");
    if (pre >= 0 && pre < layers) block = pre;
  }
  if (block == layers)
    fail("{} {}: the final norm's output is edited as ln_final.hook_normalized (the last block's output is "
         "blocks.{}.hook_resid_post)",
         option, site, layers - 1);
  if (block > 0 && block < layers) return fmt::format("blocks.{}.hook_resid_post", block - 1);
  if (block == 0) {
    const auto names = model.site_names();
    const bool learned_positions = std::find(names.begin(), names.end(), "hook_pos_embed") != names.end();
    return learned_positions ? "hidden_states.0" : "hook_embed";
  }
  return site;
}

std::shared_ptr<Interventions> Interventions::prepare(const InterventionOptions& options, Model& model) {
  if (options.empty()) return nullptr;
  std::shared_ptr<Interventions> interventions(new Interventions());
  interventions->add_ablations(options, model);
  interventions->add_patches(options, model);
  interventions->add_steering(options, model);
  interventions->check_widths(model);
  return interventions;
}

Interventions::~Interventions() = default;

void Interventions::add_steering(const InterventionOptions& options, const Model& model) {
  if (options.steer.empty()) {
    if (!options.steer_layers.empty()) fail("--steer-layers needs --steer FILE");
    return;
  }
  const int layers = int(model.config().num_hidden_layers);
  const int64_t n_embd = model.config().hidden_size;
  std::pair<int, int> range{0, layers - 1};
  if (!options.steer_layers.empty()) range = parse_layer_range(options.steer_layers, layers);
  // As llama.cpp's loader does: one sum per block, each file's direction times its scale added in file order.
  std::map<int, std::vector<float>> sums;
  for (const std::string& argument : options.steer) {
    const auto [path, scale] = parse_steer(argument);
    const SteeringFile file = read_steering_file(path);
    nlohmann::json applied = nlohmann::json::array();
    for (const auto& [block, direction] : file.directions) {
      if (block >= layers)
        fail("{}: direction.{} is out of range: {} has {} blocks (direction.0 to direction.{})", path, block,
             model.dir(), layers, layers - 1);
      if (int64_t(direction.size()) != n_embd)
        fail("{}: direction.{} has {} values, but the hidden size (n_embd) of {} is {}", path, block,
             direction.size(), model.dir(), n_embd);
      if (block < range.first || block > range.second) continue;
      std::vector<float>& sum = sums.try_emplace(block, size_t(n_embd), 0.0f).first->second;
      for (int64_t i = 0; i < n_embd; ++i) {
        // Rounded to float before the sum (volatile: GCC would otherwise fuse it into an FMA under -march).
        const volatile float term = direction[size_t(i)] * scale;
        sum[size_t(i)] += term;
      }
      applied.push_back(block);
    }
    manifest_.push_back({{"kind", "steer"},
                         {"file", file.path},
                         {"sha256", file.sha256},
                         {"scale", scale},
                         {"layer_range", options.steer_layers.empty() ? nlohmann::json()
                                                                      : nlohmann::json({range.first, range.second})},
                         {"layers", applied}});
  }
  for (auto& [block, sum] : sums) {
    const std::string site = fmt::format("blocks.{}.hook_resid_post", block);
    edits_[site].push_back(Edit{Edit::Kind::Add, site, std::move(sum)});
  }
}

void Interventions::add_ablations(const InterventionOptions& options, const Model& model) {
  for (const std::string& argument : options.ablate) {
    const size_t equals = argument.find('=');
    const std::string patterns = argument.substr(0, equals);
    const std::string mode = equals == std::string::npos ? "" : argument.substr(equals + 1);
    if (patterns.empty() || (mode != "zero" && !mode.starts_with("mean:")))
      fail("--ablate \"{}\": give SITE=zero or SITE=mean:STORE", argument);
    std::optional<StoreReader> store;
    if (mode != "zero") store.emplace(mode.substr(5));
    for (const std::string& site : model_sites(patterns, model, "--ablate")) {
      const std::string point = edit_point(site, model, "--ablate");
      nlohmann::json entry = {{"kind", "ablate"}, {"site", site}, {"edit_point", point}, {"mode", "zero"}};
      Edit edit{Edit::Kind::Set, site, {}};
      if (store) {
        if (std::find(store->sites().begin(), store->sites().end(), site) == store->sites().end())
          fail("--ablate {}: the store {} has no site {} to take the mean of", argument, store->dir(), site);
        // The mean over every stored row (record and position), summed in float64.
        std::vector<double> sum;
        int64_t rows = 0;
        for (const auto& record : store->metadata()) {
          const Tensor values = store->read_f32(record.record, site);
          const int64_t n = values.shape().empty() ? 0 : values.shape()[0];
          const int64_t width = n > 0 ? values.numel() / n : 0;
          if (sum.empty()) sum.assign(size_t(width), 0.0);
          if (size_t(width) != sum.size() && n > 0)
            fail("{}: {} has rows of different widths across records", store->dir(), site);
          for (int64_t r = 0; r < n; ++r)
            for (int64_t i = 0; i < width; ++i) sum[size_t(i)] += double(values.f32()[r * width + i]);
          rows += n;
        }
        if (rows == 0) fail("--ablate {}: the store {} holds no rows of {}", argument, store->dir(), site);
        for (double total : sum) edit.row.push_back(float(total / double(rows)));
        expected_widths_[site] = int64_t(sum.size());
        width_sources_[site] = store->dir();
        entry["mode"] = "mean";
        entry["store"] = canonical(store->dir());
        entry["store_manifest_sha256"] = sha256_file((fs::path(store->dir()) / "manifest.json").string());
        entry["rows"] = rows;
      }
      edits_[point].push_back(std::move(edit));
      manifest_.push_back(std::move(entry));
    }
  }
}

void Interventions::add_patches(const InterventionOptions& options, const Model& model) {
  if (options.patch.empty() != options.patch_from.empty())
    fail("{}", options.patch.empty() ? "--from STORE needs --patch SITE" : "--patch SITE needs --from STORE");
  if (options.patch.empty()) return;
  patch_store_ = std::make_unique<StoreReader>(options.patch_from);
  const StoreReader& store = *patch_store_;
  if (store.layout() != StoreLayout::PerRecord)
    fail("--from {}: patching reads per-record stores (this one is token-stream)", options.patch_from);
  for (const std::string& patterns : options.patch) {
    for (const std::string& site : model_sites(patterns, model, "--patch")) {
      const std::string point = edit_point(site, model, "--patch");
      if (std::find(store.sites().begin(), store.sites().end(), site) == store.sites().end())
        fail("--patch {}: the store {} has no site {} (`actcap ls {}` lists its sites)", site, store.dir(), site,
             store.dir());
      for (const auto& info : store.site_infos())
        if (info.site == site) {
          int64_t width = 1;
          for (size_t d = 1; d < info.shape.size(); ++d) width *= info.shape[d];
          expected_widths_[site] = width;
        }
      width_sources_[site] = store.dir();
      edits_[point].push_back(Edit{Edit::Kind::Patch, site, {}});
      manifest_.push_back({{"kind", "patch"},
                           {"site", site},
                           {"edit_point", point},
                           {"store", canonical(store.dir())},
                           {"store_manifest_sha256", sha256_file((fs::path(store.dir()) / "manifest.json").string())}});
    }
  }
}

void Interventions::check_widths(Model& model) const {
  SiteSelection selection;
  for (const auto& [site, width] : expected_widths_) selection.sites.push_back(site);
  for (const auto& [point, edits] : edits_) selection.sites.push_back(point);
  WidthProbe probe;
  const int32_t token = 0;
  KVCache cache = model.new_cache(1);
  model.forward(std::span(&token, 1), cache, CaptureTarget{&selection, &probe});
  model.synchronize();
  for (const auto& [site, width] : expected_widths_)
    if (probe.widths.at(site) != width)
      fail("{}: {} has rows of {} values, but {} computes {} values there", width_sources_.at(site), site, width,
           model.dir(), probe.widths.at(site));
  for (const auto& [point, edits] : edits_)
    for (const Edit& edit : edits)
      if (edit.kind != Edit::Kind::Patch && !edit.row.empty() && int64_t(edit.row.size()) != probe.widths.at(point))
        fail("internal error: {} edits {} with {} values, it has {}", edit.site, point, edit.row.size(),
             probe.widths.at(point));
}

void Interventions::check_prompt(int64_t record, int64_t tokens, const std::string& origin) const {
  if (!patch_store_) return;
  const StoreReader& store = *patch_store_;
  if (record >= int64_t(store.records().size()))
    fail("--from {}: has {} records, so it has no record {} to patch {} from", store.dir(), store.records().size(),
         record, origin);
  const nlohmann::json& line = store.record(record);
  const int64_t n_prompt = line.at("n_prompt").get<int64_t>();
  const int64_t total = int64_t(line.at("token_ids").size());
  if (n_prompt != tokens)
    fail("--from {}: record {} has a prompt of {} tokens but {} has {}: patching takes the same positions, so the "
         "prompts must have the same length",
         store.dir(), record, n_prompt, origin, tokens);
  const auto& positions = line.at("positions");
  bool every_position = int64_t(positions.size()) == total;
  for (int64_t p = 0; every_position && p < total; ++p) every_position = positions[size_t(p)].get<int64_t>() == p;
  if (!every_position)
    fail("--from {}: record {} does not hold every position (capture it with --positions all to patch from it)",
         store.dir(), record);
}

void Interventions::edit(const std::string& site, void* rows, int64_t width, const EditPass& pass) {
  for (const Edit& edit : edits_.find(site)->second) {
    switch (edit.kind) {
      case Edit::Kind::Set:
        if (edit.row.empty()) {
          fill_rows(pass.backend, rows, std::vector<float>(size_t(width), 0.0f), pass.rows);
        } else {
          fill_rows(pass.backend, rows, edit.row, pass.rows);
        }
        break;
      case Edit::Kind::Patch:
        patch(edit, rows, width, pass);
        break;
      case Edit::Kind::Add: {
        fill_rows(pass.backend, pass.scratch, edit.row, pass.rows);
        pass.backend.add(rows, pass.scratch, rows, pass.rows * width);
        break;
      }
    }
  }
}

void Interventions::patch(const Edit& edit, void* rows, int64_t width, const EditPass& pass) const {
  const StoreReader& store = *patch_store_;
  std::vector<float> host;
  for (size_t i = 0; i < pass.spans.size(); ++i) {
    const ops::BatchSequence& span = pass.spans[i];
    const int sequence = pass.sequences[i];
    if (sequence < 0 || size_t(sequence) >= batch_records_.size())
      fail("internal error: no record for sequence {} of a patched pass", sequence);
    const int64_t record = batch_records_[size_t(sequence)];
    const TensorView source = store.view(record, edit.site);
    const int64_t available = source.shape.empty() ? 0 : source.shape[0];
    if (span.first_position + span.rows > available)
      fail("--from {}: record {} has {} tokens, but this capture reaches position {} (patch generated tokens from "
           "a capture that generated as many)",
           store.dir(), record, available, span.first_position + span.rows - 1);
    host.resize(size_t(span.rows * width));
    const auto* bytes = static_cast<const char*>(source.data);
    convert_to_f32(bytes + span.first_position * width * int64_t(dtype_size(source.dtype)), source.dtype, host.data(),
                   host.size());
    pass.backend.upload(host.data(), int64_t(host.size()), advance(rows, span.first_row * width, pass.backend));
  }
}

}  // namespace actcap
