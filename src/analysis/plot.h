#pragma once
// Figures for the analysis commands (concept, compare, stats --plot, reports): a grid of panels, each a line
// or bar chart over a shared x axis, rendered with cairo to PNG or SVG. Deliberately small: the commands
// describe what to draw; layout, ticks, colours and the legend are decided here, the same way everywhere.
#include <string>
#include <vector>

namespace actcap::plot {

struct Series {
  std::string label;     // legend entry; empty: no legend entry
  std::vector<double> y;  // one value per x position; NaN leaves a gap
};

enum class ChartKind { lines, bars };

struct Panel {
  std::string title, x_label, y_label;
  ChartKind kind = ChartKind::lines;
  std::vector<double> x;              // x positions (e.g. layer numbers), increasing; bars: one per category
  std::vector<std::string> x_ticks;   // optional tick labels, one per x position (bars: category names)
  std::vector<Series> series;
  bool log_y = false;                 // log-scaled y axis (values <= 0 are left out)
};

struct Figure {
  std::string title;
  std::vector<Panel> panels;
  int columns = 1;                    // panels fill rows of this many
  int width = 1200, height = 800;     // pixels (PNG) or points (SVG)
};

// Writes `figure` to `path` (".png" or ".svg", chosen by the extension) atomically: rendered to a temporary
// name and renamed when complete. Throws actcap::Error naming the file on failure or an unknown extension.
void write_figure(const Figure& figure, const std::string& path);

}  // namespace actcap::plot
