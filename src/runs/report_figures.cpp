#include "runs/report_figures.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include <fmt/format.h>

namespace actcap::runs {
namespace {

constexpr double kGap = std::numeric_limits<double>::quiet_NaN();

std::string evaluation_label(const Evaluation& e) {
  return fmt::format("#{} {} vs {}", e.number, model_label(e.model_a), model_label(e.model_b));
}

// The layers any evaluation covers, 0..max.
std::vector<double> layer_axis(const std::vector<Evaluation>& evaluations) {
  int64_t last = 0;
  for (const auto& e : evaluations)
    for (const auto& l : e.layers) last = std::max(last, l.layer);
  std::vector<double> x;
  for (int64_t l = 0; l <= last; ++l) x.push_back(double(l));
  return x;
}

template <typename Value>
std::vector<double> per_layer(const Evaluation& e, size_t layers, Value value) {
  std::vector<double> y(layers, kGap);
  for (const auto& l : e.layers)
    if (size_t(l.layer) < layers) y[size_t(l.layer)] = value(l);
  return y;
}

plot::Panel titled(std::string title, std::string x_label, std::string y_label) {
  plot::Panel panel;
  panel.title = std::move(title);
  panel.x_label = std::move(x_label);
  panel.y_label = std::move(y_label);
  return panel;
}

}  // namespace

std::string model_label(const std::string& path) {
  std::filesystem::path p(path);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

plot::Figure metric_trends_figure(const std::vector<Evaluation>& evaluations) {
  plot::Figure figure;
  figure.title = "Metric trends (metrics.jsonl)";
  figure.columns = 2;
  const std::vector<double> layers = layer_axis(evaluations);

  plot::Panel cosine = titled("Hidden-state cosine A vs B", "layer (hidden_states.k)", "cosine (mean over tokens)");
  plot::Panel rms = titled("Residual RMS", "layer (hidden_states.k)", "RMS");
  plot::Panel kl_position = titled("KL(A||B) per token position", "position", "KL (nats)");
  plot::Panel kl_mean = titled("Mean KL(A||B) per evaluation", "evaluation", "KL (nats)");
  cosine.x = rms.x = layers;
  if (layers.size() <= 32)  // a label per layer while they fit
    for (double layer : layers) cosine.x_ticks.push_back(fmt::format("{}", layer));
  rms.x_ticks = cosine.x_ticks;
  kl_mean.kind = plot::ChartKind::bars;
  plot::Series kl_bars{"mean KL", {}};
  std::set<std::string> drawn_models;
  size_t longest = 0;
  for (const auto& e : evaluations) longest = std::max(longest, e.kl_by_position.size());
  for (size_t t = 0; t < longest; ++t) kl_position.x.push_back(double(t));
  for (const auto& e : evaluations) {
    const std::string label = evaluation_label(e);
    cosine.series.push_back({label, per_layer(e, layers.size(), [](const LayerSummary& l) {
                               return l.cosine ? *l.cosine : kGap;
                             })});
    // One RMS curve per model (by weights), however many evaluations it is in.
    if (drawn_models.insert(e.model_a_sha256).second)
      rms.series.push_back({fmt::format("{} (#{} A)", model_label(e.model_a), e.number),
                            per_layer(e, layers.size(), [](const LayerSummary& l) { return l.rms_a; })});
    if (drawn_models.insert(e.model_b_sha256).second)
      rms.series.push_back({fmt::format("{} (#{} B)", model_label(e.model_b), e.number),
                            per_layer(e, layers.size(), [](const LayerSummary& l) { return l.rms_b; })});
    std::vector<double> kl = e.kl_by_position;
    kl.resize(longest, kGap);
    kl_position.series.push_back({label, kl});
    kl_mean.x.push_back(double(e.number));
    kl_mean.x_ticks.push_back(fmt::format("#{}", e.number));
    kl_bars.y.push_back(e.kl_mean.value_or(kGap));
  }
  kl_mean.series.push_back(kl_bars);
  figure.panels = {cosine, rms, kl_position, kl_mean};
  return figure;
}

plot::Figure rotation_cosine_figure(const std::vector<RotationRun>& rotations) {
  std::vector<std::string> sites;  // in order of first appearance
  for (const auto& run : rotations)
    for (const auto& line : run.lines)
      if (std::find(sites.begin(), sites.end(), line.site) == sites.end()) sites.push_back(line.site);
  plot::Panel panel = titled("Cosine before and after rotation (rotations.jsonl)", "site", "cosine (mean over tokens)");
  for (size_t i = 0; i < sites.size(); ++i) panel.x.push_back(double(i));
  panel.x_ticks = sites;
  for (const auto& run : rotations) {
    std::vector<double> before(sites.size(), kGap), after(sites.size(), kGap);
    for (const auto& line : run.lines) {
      const size_t i = size_t(std::find(sites.begin(), sites.end(), line.site) - sites.begin());
      before[i] = line.cosine_before.value_or(kGap);
      after[i] = line.cosine_after;
    }
    panel.series.push_back({fmt::format("#{} before", run.number), before});
    bool one_k = true;
    for (const auto& line : run.lines) one_k = one_k && line.components == run.lines.front().components;
    panel.series.push_back({one_k ? fmt::format("#{} after (k = {})", run.number, run.lines.front().components)
                                  : fmt::format("#{} after", run.number),
                            after});
  }
  plot::Figure figure;
  figure.title = "Student-teacher alignment per site";
  figure.panels = {panel};
  return figure;
}

plot::Figure singular_values_figure(const RotationRun& latest) {
  plot::Panel panel = titled(fmt::format("Singular values, rotation run #{} ({})", latest.number, latest.created),
                    "component", "singular value");
  panel.log_y = true;
  size_t longest = 0;
  for (const auto& line : latest.lines) longest = std::max(longest, line.singular_values.size());
  for (size_t i = 0; i < longest; ++i) panel.x.push_back(double(i + 1));
  if (longest <= 32)
    for (size_t i = 0; i < longest; ++i) panel.x_ticks.push_back(std::to_string(i + 1));
  for (const auto& line : latest.lines) {
    std::vector<double> values = line.singular_values;
    values.resize(longest, kGap);
    panel.series.push_back({fmt::format("{} (line {})", line.site, line.line), values});
  }
  plot::Figure figure;
  figure.title = "Procrustes singular values";
  figure.panels = {panel};
  return figure;
}

}  // namespace actcap::runs
