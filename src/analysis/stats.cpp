#include "analysis/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "analysis/layer_series.h"
#include "analysis/site_rows.h"
#include "core/error.h"
#include "export/integers.h"

namespace actcap {

namespace {
template <typename ToDouble>
void piece_stats(int64_t n, ToDouble value, double& min, double& max, double& mean, double& m2) {
  double sum = 0;
  min = std::numeric_limits<double>::infinity();
  max = -min;
  for (int64_t i = 0; i < n; ++i) {
    double v = value(i);
    sum += v;
    min = std::min(min, v);
    max = std::max(max, v);
    if (std::isnan(v)) min = max = v;
  }
  mean = sum / double(n);
  m2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = value(i) - mean;
    m2 += d * d;
  }
}

nlohmann::ordered_json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
}

int precision_bits(DType dtype) { return int(dtype_size(dtype) * 8); }
}  // namespace

void RunningStats::add(const TensorView& values) {
  const int64_t n = values.numel();
  if (n == 0) return;
  double min, max, mean, m2;
  switch (values.dtype) {
    case DType::F32: {
      const float* p = static_cast<const float*>(values.data);
      piece_stats(n, [p](int64_t i) { return double(p[i]); }, min, max, mean, m2);
      break;
    }
    case DType::F64: {
      const double* p = static_cast<const double*>(values.data);
      piece_stats(n, [p](int64_t i) { return p[i]; }, min, max, mean, m2);
      break;
    }
    case DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(values.data);
      piece_stats(n, [p](int64_t i) { return double(bf16_to_f32(p[i])); }, min, max, mean, m2);
      break;
    }
    case DType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(values.data);
      piece_stats(n, [p](int64_t i) { return double(f16_to_f32(p[i])); }, min, max, mean, m2);
      break;
    }
    default:
      fail("statistics of {} values are not supported", dtype_name(values.dtype));
  }
  if (count_ == 0) {
    count_ = n, min_ = min, max_ = max, mean_ = mean, m2_ = m2;
    return;
  }
  const double total = double(count_ + n);
  const double delta = mean - mean_;
  m2_ += m2 + delta * delta * double(count_) * double(n) / total;
  mean_ += delta * double(n) / total;
  count_ += n;
  if (std::isnan(min) || std::isnan(min_)) {
    min_ = max_ = std::numeric_limits<double>::quiet_NaN();
  } else {
    min_ = std::min(min_, min);
    max_ = std::max(max_, max);
  }
}

double RunningStats::sample_std() const {
  if (count_ < 2) return std::numeric_limits<double>::quiet_NaN();
  return std::sqrt(m2_ / double(count_ - 1));
}

void RowNormStats::add(const TensorView& values, int position_axis) {
  std::vector<double> row;
  const int64_t count = position_count(values, position_axis);
  for (int64_t r = 0; r < count; ++r) {
    row_values(values, position_axis, r, row);
    double sum = 0;
    for (double v : row) sum += v * v;
    sum_ += std::sqrt(sum);
  }
  rows_ += count;
}

double RowNormStats::mean() const { return rows_ ? sum_ / double(rows_) : std::numeric_limits<double>::quiet_NaN(); }

plot::Figure stats_figure(const std::string& title, const std::vector<LayerStats>& layers) {
  std::vector<std::string> sites;
  std::vector<double> mean, std, norm, max_abs;
  for (const LayerStats& l : layers) {
    sites.push_back(l.site);
    mean.push_back(l.values.mean());
    std.push_back(l.values.sample_std());
    norm.push_back(l.row_norms.mean());
    max_abs.push_back(std::max(std::fabs(l.values.min()), std::fabs(l.values.max())));
  }
  plot::Figure figure;
  figure.title = title;
  figure.columns = 2;
  figure.width = 1200;
  figure.height = 900;
  figure.panels = {layer_panel("mean", "mean", sites, mean), layer_panel("standard deviation", "std", sites, std),
                   layer_panel("L2 norm per position (mean)", "||x||", sites, norm, true),
                   layer_panel("max |x|", "max |x|", sites, max_abs, true)};
  return figure;
}

nlohmann::ordered_json stats_json(const std::string& model_name, const std::optional<std::string>& prompt,
                                  const std::optional<std::string>& generated_text,
                                  const std::vector<LayerStats>& layers) {
  nlohmann::ordered_json layer_stats = nlohmann::ordered_json::array();
  int64_t min_size = 0, max_size = 0, total_size = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerStats& l = layers[i];
    const int64_t size = l.values.count();
    min_size = i == 0 ? size : std::min(min_size, size);
    max_size = i == 0 ? size : std::max(max_size, size);
    total_size += size;
    layer_stats.push_back(nlohmann::ordered_json{{"layer", l.layer},
                           {"site", l.site},
                           {"shape", l.shape},
                           {"num_elements", size},
                           {"min", number_or_null(l.values.min())},
                           {"max", number_or_null(l.values.max())},
                           {"mean", number_or_null(l.values.mean())},
                           {"std", number_or_null(l.values.sample_std())},
                           {"dtype", torch_dtype_name(l.dtype)},
                           {"precision_bits", precision_bits(l.dtype)}});
  }
  const double avg_size = layers.empty() ? 0.0 : double(total_size) / double(layers.size());
  return nlohmann::ordered_json{{"model_name", model_name},
          {"prompt", prompt ? nlohmann::ordered_json(*prompt) : nlohmann::ordered_json()},
          {"generated_text", generated_text ? nlohmann::ordered_json(*generated_text) : nlohmann::ordered_json()},
          {"size_summary",
           nlohmann::ordered_json{{"min_size", min_size}, {"max_size", max_size}, {"avg_size", avg_size}}},
          {"layer_stats", layer_stats}};
}

}  // namespace actcap
