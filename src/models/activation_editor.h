#pragma once
// Edits of activations inside a forward pass (steering, ablation, patching): the counterpart of ActivationSink.
// A model asks its editor about every site as the site is computed, before anything downstream reads it and
// before the site is delivered to a capture, so a captured edited site holds the edited value.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ops/backend.h"

namespace actcap {

// One pass as an editor sees it: the backend holding the rows, each sequence's rows in the packed batch with
// the id the sink receives (`sequences[i]` owns `spans[i]`), and scratch memory as large as the edited rows.
struct EditPass {
  ops::Backend& backend;
  std::span<const ops::BatchSequence> spans;
  std::span<const int> sequences;
  int64_t rows = 0;
  void* scratch = nullptr;
};

class ActivationEditor {
 public:
  virtual ~ActivationEditor() = default;
  virtual bool edits(std::string_view site) const = 0;
  // Edits `rows` ([pass.rows, width] of `site`, the backend's dtype) in place, with backend ops only.
  virtual void edit(const std::string& site, void* rows, int64_t width, const EditPass& pass) = 0;
};

}  // namespace actcap
