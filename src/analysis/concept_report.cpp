#include "analysis/concept_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "capture/store_reader.h"
#include "core/error.h"

namespace actcap {
namespace {

constexpr const char* kDefinitions[][2] = {
    {"diff_norm", "||mean_i (p_i - q_i)||, p = positive, q = negative vectors of pair i"},
    {"mean_norm", "mean ||h|| over every positive and negative vector"},
    {"relative_diff", "diff_norm / mean_norm"},
    {"cosine", "mean_i cos(p_i, q_i)"},
    {"separation", "Cohen's d on u = mean diff / its norm: (mean p.u - mean q.u) / sqrt((var p.u + var q.u) / 2), "
                   "sample variances"},
    {"pair_accuracy", "share of pairs with p_i.u > q_i.u"},
    {"rank", "by separation, 1 = best"},
};

std::vector<int> blocks_by_rank(const ConceptReport& report) {
  std::vector<const LayerSeparation*> order;
  for (const auto& layer : report.layers) order.push_back(&layer);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->rank < b->rank; });
  std::vector<int> blocks;
  for (const auto* layer : order) blocks.push_back(layer->block);
  return blocks;
}

}  // namespace

ConceptReport analyze_concept_store(const std::string& store_dir, RowReduction reduction) {
  const StoreReader store(store_dir);
  const StorePairs pairs = store_pairs(store);
  ConceptReport report;
  report.store = store_dir;
  report.concept_name = pairs.concept_name;
  const nlohmann::json model = store.manifest().value("model", nlohmann::json::object());
  report.model = model.value("path", "");
  report.model_type = model.value("model_type", "");
  report.pairs = int64_t(pairs.positive.size());
  report.positions = reduction == RowReduction::last ? "last" : "mean";
  for (const auto& [block, site] : block_output_sites(store)) {
    LayerSeparation layer = layer_separation(pair_matrices(store, pairs, site, reduction));
    layer.site = site;
    layer.block = block;
    report.layers.push_back(std::move(layer));
  }
  rank_layers(report.layers);
  return report;
}

nlohmann::ordered_json report_json(const ConceptReport& report) {
  nlohmann::ordered_json definitions = nlohmann::ordered_json::object();
  for (const auto& [key, text] : kDefinitions) definitions[key] = text;
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const LayerSeparation& layer : report.layers) layers.push_back(to_json(layer));
  return {{"concept", report.concept_name}, {"store", report.store},       {"model", report.model},
          {"model_type", report.model_type}, {"pairs", report.pairs},      {"positions", report.positions},
          {"ranking", blocks_by_rank(report)}, {"layers", layers},         {"definitions", definitions}};
}

std::string report_text(const ConceptReport& report) {
  std::string text = fmt::format("concept {}: {} pairs, {} position, {} ({})\n",
                                 report.concept_name.empty() ? "(unnamed)" : report.concept_name, report.pairs,
                                 report.positions, report.model, report.model_type);
  text += separation_table(report.layers);
  const std::vector<int> ranking = blocks_by_rank(report);
  std::string best;
  for (size_t i = 0; i < std::min<size_t>(ranking.size(), 5); ++i) best += (i ? ", " : "") + std::to_string(ranking[i]);
  text += fmt::format("best blocks by separation: {} (separation = Cohen's d along the mean difference)\n", best);
  return text;
}

plot::Figure report_figure(const ConceptReport& report) {
  plot::Figure figure;
  figure.title = fmt::format("concept {}: {} ({} pairs, {} position)", report.concept_name, report.model_type,
                             report.pairs, report.positions);
  figure.width = 1200;
  figure.height = 1000;
  std::vector<double> x;
  std::vector<std::string> ticks, ranked_ticks;  // integer block numbers, whatever the axis would choose
  plot::Series diff{"||mean(pos - neg)||", {}}, cosine{"mean cos(pos, neg)", {}},
      separation{"separation", {}};
  for (const LayerSeparation& layer : report.layers) {
    x.push_back(layer.block);
    ticks.push_back(std::to_string(layer.block));
    ranked_ticks.push_back(fmt::format("{} (#{})", layer.block, layer.rank));
    diff.y.push_back(layer.diff_norm);
    cosine.y.push_back(layer.cosine);
    separation.y.push_back(std::isfinite(layer.separation) ? layer.separation : std::numeric_limits<double>::quiet_NaN());
  }
  figure.panels.push_back({"difference norm per layer", "block", "||mean(pos - neg)||", plot::ChartKind::lines, x, ticks,
                           {diff}, false});
  figure.panels.push_back({"cosine(pos, neg) per layer (lower: more separated)", "block", "mean cosine",
                           plot::ChartKind::lines, x, ticks, {cosine}, false});
  figure.panels.push_back({"separation per layer (rank in brackets)", "block (#rank)", "Cohen's d",
                           plot::ChartKind::bars, x, ranked_ticks, {separation}, false});
  return figure;
}

}  // namespace actcap
