#pragma once
// Per-layer statistics in the format of the original capture tool's `<model>_stats.json`:
//   {model_name, prompt, generated_text, size_summary: {min_size, max_size, avg_size},
//    layer_stats: [{layer, shape, num_elements, min, max, mean, std, dtype, precision_bits}, ...]}
// plus `site` per layer and `records` at the top. hidden_states.{k} sites are named `embedding` (k = 0) and
// `layer_{k-1}`; other sites keep their names. Sizes are element counts. Values are accumulated in double from the
// stored values (exact for f32/f16/bf16). `std` is the sample standard deviation (divisor N - 1), as torch.std's
// default (unbiased=True) computes it; null for a single element, as are NaN/Inf results.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "analysis/plot.h"
#include "core/tensor.h"
#include "export/output_names.h"  // layer_name_of_site

namespace actcap {

// Count, extremes, mean and sum of squared deviations, merged from pieces (Chan et al.), each piece two-pass.
class RunningStats {
 public:
  void add(const TensorView& values);  // F32, F16, BF16 or F64
  int64_t count() const { return count_; }
  double min() const { return min_; }
  double max() const { return max_; }
  double mean() const { return mean_; }
  double sample_std() const;  // NaN for fewer than two values

 private:
  int64_t count_ = 0;
  double min_ = 0, max_ = 0, mean_ = 0, m2_ = 0;
};

// The L2 norm of each position's row (analysis/site_rows.h), averaged over the rows added.
class RowNormStats {
 public:
  void add(const TensorView& values, int position_axis);  // F32, F16 or BF16
  int64_t rows() const { return rows_; }
  double mean() const;  // NaN without rows

 private:
  int64_t rows_ = 0;
  double sum_ = 0;
};

struct LayerStats {
  std::string layer, site;
  Shape shape;  // the batch dimension first: 1 for one record, else the number of records; dims that differ: -1
  DType dtype = DType::F32;
  RunningStats values;
  RowNormStats row_norms = {};  // for the per-layer figure
};

// The stats document from finished layers (in order), keys in the original tool's order.
nlohmann::ordered_json stats_json(const std::string& model_name, const std::optional<std::string>& prompt,
                                  const std::optional<std::string>& generated_text,
                                  const std::vector<LayerStats>& layers);

// The per-layer figure of `stats --plot`: mean, std, mean row norm and max |x| over the layers, one line per
// site kind (analysis/layer_series.h); sites outside the layers are left out.
plot::Figure stats_figure(const std::string& title, const std::vector<LayerStats>& layers);

}  // namespace actcap
