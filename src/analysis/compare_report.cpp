#include "analysis/compare_report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "analysis/layer_series.h"

namespace actcap {

namespace {
std::string number_text(double v, const char* format) {
  if (std::isnan(v)) return "-";
  if (v == 0) return "0";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format(fmt::runtime(format), v);
}

// Cosines near 1 as "1-2.1e-14" where 9 decimals would round them to 1; exactly 1 as "1".
std::string cosine_text(double v) {
  if (v == 1) return "1";
  const std::string decimals = number_text(v, "{:.9f}");
  return decimals == "1.000000000" ? fmt::format("1-{:.1e}", 1 - v) : decimals;
}

nlohmann::ordered_json number_or_null(double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(); }

std::vector<int64_t> side(const std::vector<std::pair<int64_t, int64_t>>& pairs, bool first) {
  std::vector<int64_t> records;
  for (const auto& pair : pairs) records.push_back(first ? pair.first : pair.second);
  return records;
}

std::string tokens_text(const Comparison& c) {
  if (c.pairs_with_different_tokens == 0) return "same tokens: the positions both stored";
  return fmt::format("different tokens in {} of {} pairs: their stored rows in order, over the shorter record",
                     c.pairs_with_different_tokens, c.pairs.size());
}
}  // namespace

nlohmann::ordered_json comparison_json(const Comparison& c) {
  nlohmann::ordered_json sites = nlohmann::ordered_json::array(), skipped = nlohmann::ordered_json::array();
  for (const SiteComparison& site : c.sites) {
    if (!site.not_compared.empty()) {
      skipped.push_back({{"site", site.site}, {"reason", site.not_compared}});
      continue;
    }
    const DifferenceStats& s = site.stats;
    nlohmann::ordered_json entry = {{"site", site.site}};
    if (const auto at = site_layer(site.site)) entry["kind"] = at->kind, entry["layer"] = at->layer;
    entry["row_shape"] = site.row_shape;
    entry["rows"] = s.rows();
    entry["values"] = s.values();
    entry["cosine_mean"] = number_or_null(s.cosine_mean());
    entry["cosine_min"] = number_or_null(s.cosine_min());
    entry["cosine_flat"] = number_or_null(s.cosine_flat());
    entry["relative_l2"] = number_or_null(s.relative_l2());
    entry["max_abs_diff"] = number_or_null(s.max_abs_diff());
    sites.push_back(std::move(entry));
  }
  const std::vector<int64_t> records_a = side(c.pairs, true), records_b = side(c.pairs, false);
  return {{"a", {{"store", c.store_a}, {"model", c.model_a}, {"dtype", c.dtype_a}, {"records", ranges_text(records_a)}}},
          {"b", {{"store", c.store_b}, {"model", c.model_b}, {"dtype", c.dtype_b}, {"records", ranges_text(records_b)}}},
          {"pairs", c.pairs.size()},
          {"pairs_with_different_tokens", c.pairs_with_different_tokens},
          {"rows", tokens_text(c)},
          {"definitions",
           {{"cosine_mean", "mean over compared rows (positions) of cos(a_row, b_row)"},
            {"cosine_min", "smallest cos(a_row, b_row)"},
            {"cosine_flat", "cosine of the flattened tensors (all compared rows)"},
            {"relative_l2", "||a - b|| / ||a|| over all compared values"},
            {"max_abs_diff", "max |a - b|"}}},
          {"sites", sites},
          {"not_compared", skipped}};
}

std::string comparison_table(const Comparison& c) {
  std::string text = fmt::format("A: {} ({}, {}, records {})\nB: {} ({}, {}, records {})\n{} record pair{}, {}\n",
                                 c.store_a, c.model_a, c.dtype_a, ranges_text(side(c.pairs, true)), c.store_b, c.model_b,
                                 c.dtype_b, ranges_text(side(c.pairs, false)), c.pairs.size(), c.pairs.size() == 1 ? "" : "s",
                                 tokens_text(c));
  std::vector<std::vector<std::string>> rows = {
      {"site", "row", "rows", "cos mean", "cos min", "cos flat", "rel L2", "max|diff|"}};
  std::vector<std::string> skipped;
  for (const SiteComparison& site : c.sites) {
    if (!site.not_compared.empty()) {
      skipped.push_back(fmt::format("  {}: {}", site.site, site.not_compared));
      continue;
    }
    const DifferenceStats& s = site.stats;
    rows.push_back({site.site, shape_string(site.row_shape), std::to_string(s.rows()), cosine_text(s.cosine_mean()),
                    cosine_text(s.cosine_min()), cosine_text(s.cosine_flat()),
                    number_text(s.relative_l2(), "{:.3e}"), number_text(s.max_abs_diff(), "{:.3e}")});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t col = 0; col < row.size(); ++col) widths[col] = std::max(widths[col], row[col].size());
  if (rows.size() > 1)
    for (const auto& row : rows) {
      std::string line;
      for (size_t col = 0; col < row.size(); ++col)
        line += col < 2 ? fmt::format("{:<{}}  ", row[col], widths[col]) : fmt::format("{:>{}}  ", row[col], widths[col]);
      line.erase(line.find_last_not_of(' ') + 1);
      text += line + "\n";
    }
  if (!skipped.empty()) text += fmt::format("not compared ({}):\n", skipped.size());
  for (const std::string& line : skipped) text += line + "\n";
  return text;
}

plot::Figure comparison_figure(const Comparison& c) {
  std::vector<std::string> sites;
  std::vector<double> cosines, relative_l2;
  for (const SiteComparison& site : c.sites) {
    if (!site.not_compared.empty()) continue;
    sites.push_back(site.site);
    cosines.push_back(site.stats.cosine_mean());
    relative_l2.push_back(site.stats.relative_l2());
  }
  plot::Figure figure;
  figure.title = fmt::format("{} vs {} ({} record pair{})", c.store_a, c.store_b, c.pairs.size(), c.pairs.size() == 1 ? "" : "s");
  figure.columns = 2;
  figure.width = 1200;
  figure.height = 500;
  figure.panels.push_back(layer_panel("cosine similarity (mean over positions)", "cosine", sites, cosines));
  figure.panels.push_back(
      layer_panel("relative L2 difference ||a - b|| / ||a||", "relative L2", sites, relative_l2, true));
  return figure;
}

}  // namespace actcap
