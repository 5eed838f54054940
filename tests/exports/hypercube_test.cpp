// Hypercube shape search, padding, coordinate mapping, and the export over real integer layers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "export/hypercube.h"
#include "export/integers.h"
#include "export/object_npy.h"

namespace actcap {
namespace {

TEST(ExportsHypercube, ShapeSearchMatchesTheOriginalTool) {
  HypercubeShape s = choose_hypercube(60, 4, 10, std::nullopt);  // 3 layers of 20: (4, 4, 4), padding 4
  EXPECT_EQ(s.side, 4);
  EXPECT_EQ(s.dims, 3);
  EXPECT_EQ(s.total, 64);
  // 28 layers of 86,016: the seed tool's README names 9^7 (4,782,969) but 4^11 = 4,194,304 pads less, and the
  // least padding is the rule.
  s = choose_hypercube(2408448, 4, 10, std::nullopt);
  EXPECT_EQ(s.side, 4);
  EXPECT_EQ(s.dims, 11);
  s = choose_hypercube(2408448, 5, 10, std::nullopt);  // sides 5..10: 9^7 (7^8 = 5,764,801 pads more)
  EXPECT_EQ(s.side, 9);
  EXPECT_EQ(s.dims, 7);
  s = choose_hypercube(64, 4, 10, std::nullopt);  // 4^3 = 8^2: the smaller side wins the tie
  EXPECT_EQ(s.side, 4);
  s = choose_hypercube(60, 4, 10, 4);  // forced 4 dims: smallest d with d^4 >= 60
  EXPECT_EQ(s.side, 4);
  EXPECT_EQ(s.dims, 4);
  s = choose_hypercube(1, 4, 10, std::nullopt);
  EXPECT_EQ(s.total, 4);
  EXPECT_THROW(choose_hypercube(100000, 4, 10, 2), Error);  // 10^2 < 100000
  EXPECT_THROW(choose_hypercube(0, 4, 10, std::nullopt), Error);
  EXPECT_THROW(choose_hypercube(10, 5, 4, std::nullopt), Error);
}

TEST(ExportsHypercube, HugeMaxDimEndsTheSearchEarly) {
  const HypercubeShape line = choose_hypercube(60, 4, int64_t(1) << 60, std::nullopt);  // would loop for ages
  EXPECT_EQ(line.side, 60);  // one axis of 60: no padding at all
  EXPECT_EQ(line.dims, 1);
  const HypercubeShape forced = choose_hypercube(60, 4, int64_t(1) << 60, int64_t(2));
  EXPECT_EQ(forced.side, 8);  // the first side whose square holds 60
  EXPECT_EQ(forced.total, 64);
}

TEST(ExportsHypercube, CoordinatesAndLayersMapBothWays) {
  const std::vector<LayerSpan> layers = {{"embedding", "embedding.npy", 0, 20, {1, 10, 2}, "", {}},
                                         {"layer_0", "layer_0.npy", 20, 40, {1, 10, 2}, "", {}},
                                         {"layer_1", "layer_1.npy", 40, 60, {1, 10, 2}, "", {}}};
  const HypercubeShape cube = choose_hypercube(60, 4, 10, std::nullopt);
  const std::vector<int64_t> sources = hypercube_padding_sources(60, 4, 42);
  for (int64_t flat = 0; flat < cube.total; ++flat) {
    const std::vector<int64_t> coords = flat_to_coords(flat, cube);
    EXPECT_EQ(coords_to_flat(coords, cube), flat);
    const Located located = locate_flat(flat, layers, cube, 42);
    const int64_t real = flat < 60 ? flat : sources[size_t(flat - 60)];
    EXPECT_EQ(located.padding, flat >= 60);
    EXPECT_EQ(layers[located.layer].flat_offset + located.position, real);
  }
  EXPECT_EQ(flat_to_coords(21, cube), (std::vector<int64_t>{1, 1, 1}));  // 16 + 4 + 1
  EXPECT_THROW(coords_to_flat({0, 4, 0}, cube), Error);
  EXPECT_THROW(flat_to_coords(64, cube), Error);
  // Same seed, same sample; another seed, (almost surely) another.
  EXPECT_EQ(hypercube_padding_sources(60, 100, 42), hypercube_padding_sources(60, 100, 42));
  EXPECT_NE(hypercube_padding_sources(60, 100, 42), hypercube_padding_sources(60, 100, 43));
}

// Writes three layers in each encoding, builds the cube, and reads every element back through the layer map.
TEST(ExportsHypercube, ExportReproducesEveryElement) {
  for (IntegerFormat format : {IntegerFormat::Object, IntegerFormat::Int64, IntegerFormat::Fixed}) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("actcap-hypercube-test-" + std::to_string(::getpid()) + "-" +
                      std::string(integer_format_name(format)));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "ints");
    const DecimalScaler scaler(format == IntegerFormat::Int64 ? 6 : 30);
    nlohmann::json layers = nlohmann::json::array();
    const char* names[] = {"embedding", "layer_0", "layer_1"};
    for (int l = 0; l < 3; ++l) {
      std::vector<float> values(20);
      for (int i = 0; i < 20; ++i) values[size_t(i)] = float((l * 20 + i) * (i % 2 ? -1 : 1)) * (l == 2 ? 1e5f : 0.37f);
      TensorView view{values.data(), DType::F32, {1, 10, 2}};
      write_integer_layer((dir / "ints").string(), names[l], {view}, view.shape, scaler, format);
      layers.push_back({{"layer", names[l]}, {"npy_file", std::string(names[l]) + ".npy"}});
    }
    write_file_atomic((dir / "ints" / "conversion_metadata.json").string(), nlohmann::json{{"layers", layers}}.dump());
    const nlohmann::json metadata = export_hypercube((dir / "ints").string(), (dir / "cube").string(), 4, 10,
                                                     std::nullopt, 7);
    EXPECT_EQ(metadata["hypercube"]["dimensions"], nlohmann::json({4, 4, 4}));

    std::vector<std::string> real;
    for (const char* name : names) {
      IntegerNpyReader reader((dir / "ints" / (std::string(name) + ".npy")).string());
      for (int64_t i = 0; i < reader.count(); ++i) real.emplace_back(reader.next());
      reader.finish();
    }
    IntegerNpyReader cube((dir / "cube" / "hypercube.npy").string());
    ASSERT_EQ(cube.count(), 64);
    EXPECT_EQ(cube.shape(), (Shape{4, 4, 4}));
    const HypercubeLayout layout = read_hypercube_layout((dir / "cube").string());
    for (int64_t flat = 0; flat < 64; ++flat) {
      const std::string element(cube.next());
      const Located at = locate_flat(flat, layout.layers, layout.cube, layout.pad_seed);
      const std::string& want = real[size_t(layout.layers[at.layer].flat_offset + at.position)];
      if (format == IntegerFormat::Fixed) {  // widened to the widest layer: the low bytes agree, the rest extend
        ASSERT_EQ(element.substr(0, want.size()), want) << flat;
      } else {
        ASSERT_EQ(element, want) << flat;
      }
    }
    cube.finish();
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace actcap
