#include "analysis/plot.h"

#include <cstdint>
#include <gtest/gtest.h>

#ifdef ACTCAP_HAVE_CAIRO
#include <cairo.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/atomic_file.h"
#include "../test_util.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

plot::Figure two_panels() {
  plot::Figure figure;
  figure.title = "Per layer";
  figure.columns = 2;
  figure.width = 800;
  figure.height = 400;
  plot::Panel lines{"cosine", "layer", "cos", plot::ChartKind::lines, {0, 1, 2, 3}, {}, {}};
  lines.series.push_back({"a", {0.1, 0.5, std::numeric_limits<double>::quiet_NaN(), 0.9}});
  lines.series.push_back({"b", {0.2, 0.3, 0.4, 0.5}});
  plot::Panel bars{"ranking", "", "score", plot::ChartKind::bars, {0, 1, 2}, {"h.1", "h.2", "h.3"}, {}};
  bars.series.push_back({"", {3, 1, 2}});
  bars.log_y = true;
  figure.panels = {lines, bars};
  return figure;
}

// Counts pixels of the palette's first colour (tab10 blue, series "a" and the bars) in a PNG.
int blue_pixels(const fs::path& png, int* width, int* height) {
  cairo_surface_t* image = cairo_image_surface_create_from_png(png.c_str());
  EXPECT_EQ(cairo_surface_status(image), CAIRO_STATUS_SUCCESS);
  *width = cairo_image_surface_get_width(image);
  *height = cairo_image_surface_get_height(image);
  const int stride = cairo_image_surface_get_stride(image);
  const unsigned char* data = cairo_image_surface_get_data(image);
  int count = 0;
  for (int y = 0; y < *height; ++y)
    for (int x = 0; x < *width; ++x) {
      const uint32_t argb = *reinterpret_cast<const uint32_t*>(data + y * stride + x * 4);
      if (argb == 0xff1f77b4u) ++count;
    }
  cairo_surface_destroy(image);
  return count;
}

TEST(Plot, PngHasTheStatedSizeAndDrawsTheData) {
  const fs::path dir = test::temp_dir("plot_png");
  const fs::path png = dir / "f.png";
  plot::write_figure(two_panels(), png.string());
  int width = 0, height = 0;
  EXPECT_GT(blue_pixels(png, &width, &height), 500);
  EXPECT_EQ(width, 800);
  EXPECT_EQ(height, 400);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // no temporary left
  fs::remove_all(dir);
}

TEST(Plot, SvgIsAnSvgDocumentOfTheStatedSize) {
  const fs::path dir = test::temp_dir("plot_svg");
  const fs::path svg = dir / "f.svg";
  plot::write_figure(two_panels(), svg.string());
  const std::string text = read_file(svg.string());
  EXPECT_EQ(text.rfind("<?xml", 0), 0u);
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("width=\"800pt\" height=\"400pt\""), std::string::npos);
  EXPECT_NE(text.find("</svg>"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Plot, EmptySeriesAndConstantValuesStillRender) {
  const fs::path dir = test::temp_dir("plot_flat");
  plot::Figure figure;
  figure.panels.push_back({"flat", "x", "y", plot::ChartKind::lines, {5}, {}, {{"one point", {2.0}}}});
  figure.panels.push_back({"empty", "", "", plot::ChartKind::lines, {}, {}, {}});
  EXPECT_NO_THROW(plot::write_figure(figure, (dir / "flat.png").string()));
  fs::remove_all(dir);
}

TEST(Plot, BadFiguresAreOneLineErrors) {
  const fs::path dir = test::temp_dir("plot_errors");
  plot::Figure figure = two_panels();
  test::expect_one_line_error([&] { plot::write_figure(figure, (dir / "f.jpg").string()); }, {"f.jpg", ".png or .svg"});
  figure.panels[0].series[0].y.pop_back();
  test::expect_one_line_error([&] { plot::write_figure(figure, (dir / "f.png").string()); },
                              {"series 'a' has 3 values for 4 x positions"});
  figure = two_panels();
  figure.width = 10;
  test::expect_one_line_error([&] { plot::write_figure(figure, (dir / "f.png").string()); }, {"10x400"});
  figure = two_panels();
  test::expect_one_line_error([&] { plot::write_figure(figure, (dir / "missing" / "f.png").string()); },
                              {"missing/f.png"});
  EXPECT_FALSE(fs::exists(dir / "f.png"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace actcap

#endif
