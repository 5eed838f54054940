#include "analysis/plot.h"

#include "core/error.h"

#ifdef ACTCAP_HAVE_CAIRO
#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numbers>

#include "core/atomic_file.h"

namespace actcap::plot {
namespace {

// Matplotlib's "tab10": distinguishable, and familiar to the people reading these figures.
constexpr double kPalette[][3] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                                  {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                                  {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133},
                                  {0.090, 0.745, 0.812}};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

struct Rect {
  double x, y, w, h;
};

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

// A round step (1, 2 or 5 times a power of ten) giving about `target` intervals over `span`.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  const double nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  return nice * magnitude;
}

// The data range widened to round tick values, never degenerate.
struct Axis {
  double lo, hi, step;
  bool log = false;
  double position(double v, double from, double to) const {  // data value -> pixel coordinate
    const double a = log ? std::log10(lo) : lo, b = log ? std::log10(hi) : hi;
    const double t = ((log ? std::log10(v) : v) - a) / (b - a);
    return from + t * (to - from);
  }
};

Axis linear_axis(Range r, int target, bool include_zero) {
  if (r.empty()) r = {0, 1};
  if (include_zero) r.add(0);
  if (r.hi - r.lo < 1e-12 * std::max(1.0, std::abs(r.hi))) {
    const double pad = r.hi == 0 ? 1 : std::abs(r.hi) * 0.1;
    r = {r.lo - pad, r.hi + pad};
  }
  const double step = nice_step(r.hi - r.lo, target);
  return {std::floor(r.lo / step) * step, std::ceil(r.hi / step) * step, step};
}

Axis log_axis(Range r) {
  if (r.empty() || r.lo <= 0) r = {1, 10};
  double lo = std::pow(10.0, std::floor(std::log10(r.lo)));
  double hi = std::pow(10.0, std::ceil(std::log10(r.hi)));
  if (hi <= lo) hi = lo * 10;
  return {lo, hi, 10, true};
}

std::vector<double> ticks(const Axis& axis) {
  std::vector<double> out;
  if (axis.log) {
    for (double v = axis.lo; v <= axis.hi * 1.0001; v *= 10) out.push_back(v);
    return out;
  }
  const long first = std::lround(axis.lo / axis.step), last = std::lround(axis.hi / axis.step);
  for (long i = first; i <= last; ++i) out.push_back(i * axis.step);  // multiples: 0 is exactly 0
  return out;
}

std::string tick_label(double v, const Axis& axis) {
  if (v == 0) return "0";
  const double magnitude = std::abs(v);
  if (axis.log || magnitude >= 1e5 || magnitude < 1e-3) return fmt::format("{:.3g}", v);
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(axis.step) + 1e-9)));
  return fmt::format("{:.{}f}", v, decimals);
}

class Painter {
 public:
  explicit Painter(cairo_t* cr) : cr_(cr) {}

  void text(const std::string& s, double x, double y, double size, double align_x, double align_y,
            bool bold = false, double angle = 0) {
    cairo_save(cr_);
    cairo_select_font_face(cr_, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr_, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr_, s.c_str(), &e);
    cairo_translate(cr_, x, y);
    cairo_rotate(cr_, angle);
    // align 0 = left/top, 0.5 = centre, 1 = right/bottom of the text box.
    cairo_move_to(cr_, -e.x_bearing - align_x * e.width, -e.y_bearing - align_y * e.height);
    cairo_show_text(cr_, s.c_str());
    cairo_restore(cr_);
  }

  double text_width(const std::string& s, double size) {
    cairo_select_font_face(cr_, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr_, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr_, s.c_str(), &e);
    return e.x_advance;
  }

  void colour(int index, double alpha = 1) {
    const auto& c = kPalette[index % kPaletteSize];
    cairo_set_source_rgba(cr_, c[0], c[1], c[2], alpha);
  }

  // Series past the palette's ten colours repeat them, dashed (then dotted), so no two lines look alike.
  void dash(int index, double unit) {
    const int round = index / kPaletteSize;
    const double dashed[] = {unit * 3, unit * 1.5}, dotted[] = {unit * 0.8, unit * 1.2};
    if (round == 0) cairo_set_dash(cr_, nullptr, 0, 0);
    else cairo_set_dash(cr_, round == 1 ? dashed : dotted, 2, 0);
  }

  cairo_t* cr() { return cr_; }

 private:
  cairo_t* cr_;
};

void check_panel(const Panel& panel) {
  for (const Series& s : panel.series)
    if (s.y.size() != panel.x.size())
      fail("plot '{}': series '{}' has {} values for {} x positions", panel.title, s.label, s.y.size(),
           panel.x.size());
  if (!panel.x_ticks.empty() && panel.x_ticks.size() != panel.x.size())
    fail("plot '{}': {} tick labels for {} x positions", panel.title, panel.x_ticks.size(), panel.x.size());
}

void draw_panel(Painter& p, const Panel& panel, Rect area, double font) {
  cairo_t* cr = p.cr();
  const bool bars = panel.kind == ChartKind::bars;
  Range xr, yr;
  for (double x : panel.x) xr.add(x);
  for (const Series& s : panel.series)
    for (double y : s.y)
      if (!panel.log_y || y > 0) yr.add(y);
  const Axis ya = panel.log_y ? log_axis(yr) : linear_axis(yr, 5, bars);
  std::vector<std::string> y_labels;
  double y_label_width = 0;
  for (double t : ticks(ya)) {
    y_labels.push_back(tick_label(t, ya));
    y_label_width = std::max(y_label_width, p.text_width(y_labels.back(), font * 0.85));
  }

  // Plot box inside the panel: room for the title, tick labels, axis labels and the legend.
  const double left = area.x + y_label_width + font * (panel.y_label.empty() ? 1.0 : 2.4);
  const double top = area.y + font * 2.0;
  const double right = area.x + area.w - font * 0.8;
  const double bottom = area.y + area.h - font * (panel.x_label.empty() ? 2.0 : 3.4);
  if (right - left < 20 || bottom - top < 20) fail("plot '{}': the figure is too small for its panels", panel.title);

  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  p.text(panel.title, (left + right) / 2, area.y + font * 0.3, font * 1.05, 0.5, 0, true);
  if (!panel.y_label.empty())
    p.text(panel.y_label, area.x + font * 0.2, (top + bottom) / 2, font * 0.9, 0.5, 0, false, -std::numbers::pi / 2);
  if (!panel.x_label.empty()) p.text(panel.x_label, (left + right) / 2, area.y + area.h - font * 0.2, font * 0.9, 0.5, 1);

  // x mapping: bars and labelled categories sit at slot centres; numeric lines span the data range.
  const size_t n = panel.x.size();
  const bool categorical = bars || !panel.x_ticks.empty();
  Axis xa = linear_axis(xr, 8, false);
  if (!xr.empty() && !categorical) xa = {xr.lo, xr.hi > xr.lo ? xr.hi : xr.lo + 1, xa.step};
  auto x_pixel = [&](size_t i) {
    if (categorical) return left + (right - left) * (i + 0.5) / std::max<size_t>(n, 1);
    return xa.position(panel.x[i], left + 4, right - 4);
  };

  // Grid and y ticks.
  const std::vector<double> y_ticks = ticks(ya);
  cairo_set_line_width(cr, 1);
  for (size_t i = 0; i < y_ticks.size(); ++i) {
    const double y = ya.position(y_ticks[i], bottom, top);
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, left, y);
    cairo_line_to(cr, right, y);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    p.text(y_labels[i], left - font * 0.4, y, font * 0.85, 1, 0.5);
  }

  // x ticks: every category label that fits, else every k-th; numeric axes get round values.
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  if (categorical) {
    double widest = 0;
    for (size_t i = 0; i < n; ++i)
      widest = std::max(widest, p.text_width(panel.x_ticks.empty() ? fmt::format("{:g}", panel.x[i])
                                                                    : panel.x_ticks[i], font * 0.85));
    const double slot = (right - left) / std::max<size_t>(n, 1);
    const size_t every = std::max<size_t>(1, static_cast<size_t>(std::ceil((widest + font) / slot)));
    for (size_t i = 0; i < n; i += every)
      p.text(panel.x_ticks.empty() ? fmt::format("{:g}", panel.x[i]) : panel.x_ticks[i], x_pixel(i),
             bottom + font * 0.4, font * 0.85, 0.5, 0);
  } else if (!xr.empty()) {
    for (double t : ticks(linear_axis(xr, 8, false)))
      if (t >= xa.lo - 1e-9 && t <= xa.hi + 1e-9)
        p.text(tick_label(t, xa), xa.position(t, left + 4, right - 4), bottom + font * 0.4, font * 0.85, 0.5, 0);
  }

  // Data, clipped to the plot box.
  cairo_save(cr);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_clip(cr);
  const size_t count = panel.series.size();
  for (size_t s = 0; s < count; ++s) {
    const std::vector<double>& y = panel.series[s].y;
    if (bars) {
      const double slot = (right - left) / std::max<size_t>(n, 1);
      const double width = slot * 0.8 / std::max<size_t>(count, 1);
      const double base = ya.position(ya.log ? ya.lo : std::clamp(0.0, ya.lo, ya.hi), bottom, top);
      p.colour(static_cast<int>(s));
      for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(y[i]) || (ya.log && y[i] <= 0)) continue;
        const double x0 = x_pixel(i) - slot * 0.4 + width * s;
        const double yv = ya.position(y[i], bottom, top);
        cairo_rectangle(cr, x0, std::min(yv, base), width, std::abs(base - yv));
      }
      cairo_fill(cr);
      continue;
    }
    p.colour(static_cast<int>(s));
    p.dash(static_cast<int>(s), 2);
    cairo_set_line_width(cr, 2);
    bool drawing = false;
    for (size_t i = 0; i < n; ++i) {
      const bool valid = std::isfinite(y[i]) && (!ya.log || y[i] > 0);
      if (!valid) {
        drawing = false;
        continue;
      }
      const double px = x_pixel(i), py = ya.position(y[i], bottom, top);
      drawing ? cairo_line_to(cr, px, py) : cairo_move_to(cr, px, py);
      drawing = true;
    }
    cairo_stroke(cr);
    p.dash(0, 2);
    if (n <= 64)  // markers only where they stay readable
      for (size_t i = 0; i < n; ++i)
        if (std::isfinite(y[i]) && (!ya.log || y[i] > 0)) {
          cairo_arc(cr, x_pixel(i), ya.position(y[i], bottom, top), 3, 0, 2 * std::numbers::pi);
          cairo_fill(cr);
        }
  }
  cairo_restore(cr);

  // Frame.
  cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_stroke(cr);
  if (yr.empty()) p.text("no data", (left + right) / 2, (top + bottom) / 2, font, 0.5, 0.5);

  // Legend, top right inside the box, on a translucent background.
  std::vector<size_t> labelled;
  double legend_width = 0;
  for (size_t s = 0; s < count; ++s)
    if (!panel.series[s].label.empty()) {
      labelled.push_back(s);
      legend_width = std::max(legend_width, p.text_width(panel.series[s].label, font * 0.85));
    }
  if (labelled.empty()) return;
  const double line = font * 1.3, box_w = legend_width + font * 2.6, box_h = line * labelled.size() + font * 0.4;
  // The corner that hides the fewest data points (top right on ties).
  const double pad = font * 0.4;
  const double corners[4][2] = {{right - box_w - pad, top + pad}, {left + pad, top + pad},
                                {right - box_w - pad, bottom - box_h - pad}, {left + pad, bottom - box_h - pad}};
  int best = 0;
  size_t fewest = std::numeric_limits<size_t>::max();
  for (int c = 0; c < 4; ++c) {
    size_t hidden = 0;
    for (const Series& s : panel.series)
      for (size_t i = 0; i < n; ++i)
        if (std::isfinite(s.y[i]) && (!ya.log || s.y[i] > 0)) {
          const double px = x_pixel(i), py = ya.position(s.y[i], bottom, top);
          hidden += px >= corners[c][0] && px <= corners[c][0] + box_w && py >= corners[c][1] &&
                    py <= corners[c][1] + box_h;
        }
    if (hidden < fewest) fewest = hidden, best = c;
  }
  const double bx = corners[best][0], by = corners[best][1];
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_rectangle(cr, bx, by, box_w, box_h);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
  cairo_stroke(cr);
  for (size_t i = 0; i < labelled.size(); ++i) {
    const double cy = by + font * 0.2 + line * (i + 0.5);
    p.colour(static_cast<int>(labelled[i]));
    if (bars) {
      cairo_rectangle(cr, bx + font * 0.4, cy - font * 0.3, font * 1.2, font * 0.6);
      cairo_fill(cr);
    } else {
      p.dash(static_cast<int>(labelled[i]), 2);
      cairo_set_line_width(cr, 2.5);
      cairo_move_to(cr, bx + font * 0.4, cy);
      cairo_line_to(cr, bx + font * 1.6, cy);
      cairo_stroke(cr);
      p.dash(0, 2);
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    p.text(panel.series[labelled[i]].label, bx + font * 2.0, cy, font * 0.85, 0, 0.5);
  }
}

void draw(cairo_t* cr, const Figure& figure) {
  Painter p(cr);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  const double font = std::clamp(std::min(figure.width, figure.height) / 50.0, 9.0, 16.0);
  double top = font * 0.6;
  if (!figure.title.empty()) {
    cairo_set_source_rgb(cr, 0, 0, 0);
    p.text(figure.title, figure.width / 2.0, top, font * 1.25, 0.5, 0, true);
    top += font * 2.0;
  }
  const int columns = std::max(1, figure.columns);
  const int rows = static_cast<int>((figure.panels.size() + columns - 1) / columns);
  const double cell_w = static_cast<double>(figure.width) / columns, cell_h = (figure.height - top) / rows;
  for (size_t i = 0; i < figure.panels.size(); ++i) {
    const Rect cell{cell_w * (i % columns) + font * 0.5, top + cell_h * (i / columns) + font * 0.3,
                    cell_w - font, cell_h - font * 0.6};
    draw_panel(p, figure.panels[i], cell, font);
  }
}

// cairo's output callback: writes into the atomic file, keeping the first error's message (disk full, ...).
struct Output {
  AtomicFile file;
  std::string error;
};

cairo_status_t write_output(void* closure, const unsigned char* data, unsigned int length) {
  auto* out = static_cast<Output*>(closure);
  try {
    out->file.write(data, length);
    return CAIRO_STATUS_SUCCESS;
  } catch (const Error& e) {
    if (out->error.empty()) out->error = e.what();
    return CAIRO_STATUS_WRITE_ERROR;
  }
}

using SurfacePtr = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using ContextPtr = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

void check(cairo_status_t status, const Output& out) {
  if (status == CAIRO_STATUS_SUCCESS) return;
  if (!out.error.empty()) throw Error(out.error);
  fail("{}: cannot render the figure: {}", out.file.path(), cairo_status_to_string(status));
}

}  // namespace

void write_figure(const Figure& figure, const std::string& path) {
  const bool png = path.ends_with(".png"), svg = path.ends_with(".svg");
  if (!png && !svg) fail("{}: figures are written as .png or .svg", path);
  if (figure.width < 64 || figure.height < 64 || figure.width > 16384 || figure.height > 16384)
    fail("{}: figure size {}x{} is outside 64..16384", path, figure.width, figure.height);
  if (figure.panels.empty()) fail("{}: the figure has no panels", path);
  for (const Panel& panel : figure.panels) check_panel(panel);

  Output out{AtomicFile(path), {}};
  SurfacePtr surface(png ? cairo_image_surface_create(CAIRO_FORMAT_ARGB32, figure.width, figure.height)
                         : cairo_svg_surface_create_for_stream(write_output, &out, figure.width, figure.height),
                     cairo_surface_destroy);
  check(cairo_surface_status(surface.get()), out);
  {
    ContextPtr cr(cairo_create(surface.get()), cairo_destroy);
    draw(cr.get(), figure);
    check(cairo_status(cr.get()), out);
  }
  if (png) {
    check(cairo_surface_write_to_png_stream(surface.get(), write_output, &out), out);
  } else {
    cairo_surface_finish(surface.get());  // flushes the SVG document into the file
    check(cairo_surface_status(surface.get()), out);
  }
  out.file.commit();
}

}  // namespace actcap::plot

#else

namespace actcap::plot {

void write_figure(const Figure&, const std::string& path) {
  fail("{}: this actcap was built without cairo, which draws figures (install libcairo2-dev and rebuild)", path);
}

}  // namespace actcap::plot

#endif
