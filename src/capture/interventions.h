#pragma once
// Interventions during a capture: steering (control vectors added to block outputs, as llama.cpp's
// --control-vector does), ablation (a site set to zero, or to its mean over another store) and activation
// patching (a site replaced by another capture's values at the same record and positions). They apply to every
// forward pass of the capture, generation included, on any backend (they are backend ops).
//
// Editable sites: every site a forward pass reads on from, which is all of them but attention patterns
// (computed inside the attention op), logits (nothing reads them) and hidden_states.L (the final norm's output:
// edit ln_final.hook_normalized). Names that are views of one residual-stream tensor are edited at the first of
// them, so every view shows the edit: hidden_states.N (0 < N < L) and blocks.N.hook_resid_pre are edited as
// blocks.{N-1}.hook_resid_post; hidden_states.0 and blocks.0.hook_resid_pre at the embedding output (hook_embed
// in models without learned positions). At one site, ablations and patches apply first, then steering.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/activation_editor.h"

namespace actcap {

class Model;
class StoreReader;

struct InterventionOptions {
  std::vector<std::string> steer;   // FILE.gguf or FILE.safetensors, optionally :scale (default 1); vectors sum
  std::string steer_layers;         // "" (every direction.N of the files) | "A-B" (inclusive) | "N"
  std::vector<std::string> ablate;  // SITES=zero | SITES=mean:STORE (SITES: comma-separated globs)
  std::vector<std::string> patch;   // comma-separated site globs, patched from patch_from
  std::string patch_from;           // a complete store
  bool empty() const {
    return steer.empty() && steer_layers.empty() && ablate.empty() && patch.empty() && patch_from.empty();
  }
};

// The site whose computation point edits `site` (see above); throws actcap::Error naming `option` for a site
// that cannot be edited.
std::string edit_point(const std::string& site, const Model& model, const std::string& option);

class Interventions final : public ActivationEditor {
 public:
  // Reads and checks everything against `model` (files, stores, sites, widths, layers) before anything is
  // captured; null when `options` asks for nothing. Throws actcap::Error, one line naming the option or file.
  static std::shared_ptr<Interventions> prepare(const InterventionOptions& options, Model& model);
  ~Interventions() override;

  // What manifest.json records: one object per intervention (kind, site or layers, files and stores with their
  // canonical path and SHA-256, scale).
  const nlohmann::json& manifest() const { return manifest_; }
  // Patching takes the same positions from the same record: throws unless the source store's record `record`
  // exists, holds every position, and has a prompt of `tokens` tokens. `origin` names the input.
  void check_prompt(int64_t record, int64_t tokens, const std::string& origin) const;
  // The records of the next passes, by sequence id (what the sink receives).
  void begin_batch(std::vector<int64_t> records) { batch_records_ = std::move(records); }

  bool edits(std::string_view site) const override { return edits_.find(site) != edits_.end(); }
  void edit(const std::string& site, void* rows, int64_t width, const EditPass& pass) override;

 private:
  struct Edit {
    enum class Kind { Set, Patch, Add } kind;
    std::string site;        // as given (patch: its name in the source store)
    std::vector<float> row;  // Set: every position's new value; Add: added to every position
  };
  Interventions() = default;
  void add_steering(const InterventionOptions& options, const Model& model);
  void add_ablations(const InterventionOptions& options, const Model& model);
  void add_patches(const InterventionOptions& options, const Model& model);
  // Every edited site's row width in `model`, found with a one-token pass; mismatches fail naming `source`.
  void check_widths(Model& model) const;
  void patch(const Edit& edit, void* rows, int64_t width, const EditPass& pass) const;

  std::map<std::string, std::vector<Edit>, std::less<>> edits_;  // by edit point
  std::map<std::string, std::string> width_sources_;               // site as given -> file or store to blame
  std::map<std::string, int64_t> expected_widths_;                 // site as given -> width the source has
  nlohmann::json manifest_ = nlohmann::json::array();
  std::unique_ptr<StoreReader> patch_store_;
  std::vector<int64_t> batch_records_;
};

}  // namespace actcap
