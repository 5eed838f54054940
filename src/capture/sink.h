#pragma once
// Where the engine delivers activations as it computes them.
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace actcap {

class ActivationSink {
 public:
  virtual ~ActivationSink() = default;
  // Rows [first_position, first_position + rows.shape[0]) of `site` for sequence `sequence` (index in the
  // request), F32. Every site's rows are [n, ...] with the position first, except `*.attn.hook_pattern`, whose
  // rows are [n, H, first_position + n]: the probabilities over every key so far (zero past each row's own
  // position). The view is only valid during the call.
  virtual void on_activation(int sequence, const std::string& site, int64_t first_position,
                             const TensorView& rows) = 0;
};

}  // namespace actcap
