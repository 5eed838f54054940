#include "analysis/layer_series.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "core/error.h"

namespace actcap {

namespace {
// Whether the positive finite values span more than two decades (then a log scale reads better).
bool spans_decades(const std::vector<double>& values) {
  double low = std::numeric_limits<double>::infinity(), high = 0;
  for (double v : values)
    if (std::isfinite(v) && v > 0) low = std::min(low, v), high = std::max(high, v);
  return high > 0 && high / low > 100;
}

std::optional<int> leading_number(const std::string& text, size_t& end) {
  size_t i = 0;
  while (i < text.size() && i < 9 && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return std::nullopt;
  end = i;
  return std::stoi(text.substr(0, i));
}
}  // namespace

std::optional<SiteLayer> site_layer(const std::string& site) {
  static const std::string blocks = "blocks.", hidden = "hidden_states.";
  size_t end = 0;
  if (site.rfind(blocks, 0) == 0) {
    const std::string rest = site.substr(blocks.size());
    const std::optional<int> layer = leading_number(rest, end);
    if (!layer || end + 1 >= rest.size() || rest[end] != '.') return std::nullopt;
    return SiteLayer{rest.substr(end + 1), *layer};
  }
  if (site.rfind(hidden, 0) == 0) {
    const std::string rest = site.substr(hidden.size());
    const std::optional<int> layer = leading_number(rest, end);
    if (!layer || end != rest.size()) return std::nullopt;
    return SiteLayer{"hidden_states", *layer};
  }
  return std::nullopt;
}

plot::Panel layer_panel(const std::string& title, const std::string& y_label, const std::vector<std::string>& sites,
                        const std::vector<double>& values, bool log_if_wide) {
  if (sites.size() != values.size()) fail("layer_panel: {} sites but {} values", sites.size(), values.size());
  std::vector<std::string> kinds;
  std::set<int> layers;
  std::map<std::pair<std::string, int>, double> value_at;
  for (size_t i = 0; i < sites.size(); ++i) {
    const std::optional<SiteLayer> at = site_layer(sites[i]);
    if (!at) continue;
    if (std::find(kinds.begin(), kinds.end(), at->kind) == kinds.end()) kinds.push_back(at->kind);
    layers.insert(at->layer);
    value_at[{at->kind, at->layer}] = values[i];
  }
  plot::Panel panel;
  panel.title = title;
  panel.x_label = "layer";
  panel.y_label = y_label;
  for (int layer : layers) {
    panel.x.push_back(layer);
    panel.x_ticks.push_back(std::to_string(layer));
  }
  std::vector<double> plotted;
  for (const std::string& kind : kinds) {
    plot::Series series{kind, {}};
    for (int layer : layers) {
      auto it = value_at.find({kind, layer});
      series.y.push_back(it == value_at.end() ? std::numeric_limits<double>::quiet_NaN() : it->second);
      plotted.push_back(series.y.back());
    }
    panel.series.push_back(std::move(series));
  }
  panel.log_y = log_if_wide && spans_decades(plotted);
  return panel;
}

void check_figure_path(const std::string& path) {
  const std::filesystem::path file(path);
  if (file.extension() != ".png" && file.extension() != ".svg") fail("--plot {}: expected a .png or .svg file", path);
  if (file.has_parent_path() && !std::filesystem::is_directory(file.parent_path()))
    fail("--plot {}: the folder {} does not exist", path, file.parent_path().string());
}

void check_something_to_draw(const plot::Figure& figure, const std::string& path) {
  for (const plot::Panel& panel : figure.panels)
    if (!panel.series.empty()) return;
  fail("--plot {}: nothing to draw: none of the sites belongs to a layer (blocks.K.*, hidden_states.K)", path);
}

}  // namespace actcap
