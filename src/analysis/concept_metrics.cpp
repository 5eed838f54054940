#include "analysis/concept_metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace actcap {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double sample_variance(const Eigen::VectorXd& x) {
  const double mean = x.mean();
  return (x.array() - mean).square().sum() / double(x.size() - 1);
}

nlohmann::ordered_json number(double value) { return std::isfinite(value) ? nlohmann::ordered_json(value) : nullptr; }

std::string cell(double value) { return std::isfinite(value) ? fmt::format("{:.6g}", value) : "-"; }

}  // namespace

LayerSeparation layer_separation(const PairMatrices& pairs) {
  const Eigen::MatrixXd& p = pairs.positive;
  const Eigen::MatrixXd& q = pairs.negative;
  const int64_t n = p.rows();
  LayerSeparation layer;
  layer.pairs = n;
  const Eigen::VectorXd mu = (p - q).colwise().mean().transpose();
  layer.diff_norm = mu.norm();
  layer.mean_norm = (p.rowwise().norm().sum() + q.rowwise().norm().sum()) / double(2 * n);
  layer.relative_diff = layer.mean_norm > 0 ? layer.diff_norm / layer.mean_norm : kNaN;
  double cosine_sum = 0;
  for (int64_t i = 0; i < n; ++i) cosine_sum += p.row(i).dot(q.row(i)) / (p.row(i).norm() * q.row(i).norm());
  layer.cosine = cosine_sum / double(n);
  if (layer.diff_norm == 0) {
    layer.separation = layer.pair_accuracy = kNaN;
    return layer;
  }
  const Eigen::VectorXd u = mu / layer.diff_norm;
  const Eigen::VectorXd a = p * u, b = q * u;
  layer.pair_accuracy = double((a.array() > b.array()).count()) / double(n);
  const double pooled = n >= 2 ? std::sqrt((sample_variance(a) + sample_variance(b)) / 2) : 0;
  layer.separation = pooled > 0 ? (a.mean() - b.mean()) / pooled : kNaN;
  return layer;
}

void rank_layers(std::vector<LayerSeparation>& layers) {
  std::vector<size_t> order(layers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    const double a = layers[x].separation, b = layers[y].separation;
    if (std::isnan(a) || std::isnan(b)) return !std::isnan(a) && std::isnan(b);
    return a > b;
  });
  for (size_t r = 0; r < order.size(); ++r) layers[order[r]].rank = int(r + 1);
}

nlohmann::ordered_json to_json(const LayerSeparation& layer) {
  return {{"site", layer.site},
          {"block", layer.block},
          {"pairs", layer.pairs},
          {"diff_norm", number(layer.diff_norm)},
          {"mean_norm", number(layer.mean_norm)},
          {"relative_diff", number(layer.relative_diff)},
          {"cosine", number(layer.cosine)},
          {"separation", number(layer.separation)},
          {"pair_accuracy", number(layer.pair_accuracy)},
          {"rank", layer.rank}};
}

std::string separation_table(const std::vector<LayerSeparation>& layers) {
  std::vector<std::vector<std::string>> rows = {
      {"block", "site", "diff_norm", "relative", "cosine", "separation", "accuracy", "rank"}};
  for (const LayerSeparation& l : layers)
    rows.push_back({std::to_string(l.block), l.site, cell(l.diff_norm), cell(l.relative_diff), cell(l.cosine),
                    cell(l.separation), cell(l.pair_accuracy), std::to_string(l.rank)});
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  std::string text;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c)
      line += c == 1 ? fmt::format("{:<{}}  ", row[c], widths[c]) : fmt::format("{:>{}}  ", row[c], widths[c]);
    line.erase(line.find_last_not_of(' ') + 1);
    text += line + "\n";
  }
  return text;
}

}  // namespace actcap
