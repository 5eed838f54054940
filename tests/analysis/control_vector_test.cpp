// Control vectors: repeng's three methods on hand-computed examples, the sign vote (a tie keeps the sign), and
// the files: GGUF in llama.cpp's layout (no direction.0), safetensors with every block.
#include "analysis/control_vector.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "../test_util.h"

namespace actcap {
namespace {
namespace fs = std::filesystem;

PairMatrices pairs_of(std::initializer_list<std::initializer_list<double>> p, std::initializer_list<std::initializer_list<double>> q) {
  PairMatrices m;
  auto fill = [](Eigen::MatrixXd& out, std::initializer_list<std::initializer_list<double>> rows) {
    out.resize(Eigen::Index(rows.size()), Eigen::Index(rows.begin()->size()));
    Eigen::Index i = 0;
    for (const auto& row : rows) {
      Eigen::Index j = 0;
      for (double v : row) out(i, j++) = v;
      ++i;
    }
  };
  fill(m.positive, p);
  fill(m.negative, q);
  return m;
}

TEST(ControlVector, MeanDiffIsTheMeanDifferenceUnnormalised) {
  const Eigen::VectorXd d = control_direction(pairs_of({{3, 1}, {2, 2}}, {{1, 1}, {1, 1}}), ControlVectorMethod::mean_diff);
  EXPECT_DOUBLE_EQ(d(0), 1.5);
  EXPECT_DOUBLE_EQ(d(1), 0.5);
}

TEST(ControlVector, PcaDiffIsTheComponentOfTheCentredDiffsNotTheMeanDiff) {
  // Diffs (2, 0) and (1, 1): centred (0.5, -0.5), (-0.5, 0.5), so the component is (1, -1)/sqrt(2), with the
  // sign of its first (largest, tied) entry positive, kept by the vote (pair 0 higher, pair 1 tied).
  const Eigen::VectorXd d = control_direction(pairs_of({{3, 1}, {2, 2}}, {{1, 1}, {1, 1}}), ControlVectorMethod::pca_diff);
  EXPECT_NEAR(d(0), 1 / std::sqrt(2.0), 1e-15);
  EXPECT_NEAR(d(1), -1 / std::sqrt(2.0), 1e-15);
}

TEST(ControlVector, PcaCenterIsTheComponentOfThePairCentredRows) {
  // Rows (1, 0), (-1, 0), (0.5, 0.5), (-0.5, -0.5): X'X = [[2.5, 0.5], [0.5, 0.5]], top eigenvalue (3 + sqrt 5)/2.
  const Eigen::VectorXd d = control_direction(pairs_of({{3, 1}, {2, 2}}, {{1, 1}, {1, 1}}), ControlVectorMethod::pca_center);
  const double lambda = (3 + std::sqrt(5.0)) / 2, y = (lambda - 2.5) / 0.5, norm = std::sqrt(1 + y * y);
  EXPECT_NEAR(d(0), 1 / norm, 1e-14);
  EXPECT_NEAR(d(1), y / norm, 1e-14);
  EXPECT_NEAR(d.norm(), 1.0, 1e-14);
}

TEST(ControlVector, TheVoteFlipsWhenMorePairsProjectLowerAndATieKeepsTheSign) {
  // 1-D diffs +1, -2, -3: the component is (1) after svd_flip, but two pairs of three project lower: (-1).
  const auto three = pairs_of({{1}, {-2}, {-3}}, {{0}, {0}, {0}});
  EXPECT_EQ(control_direction(three, ControlVectorMethod::pca_diff)(0), -1.0);
  EXPECT_EQ(control_direction(three, ControlVectorMethod::pca_center)(0), -1.0);
  EXPECT_GT(control_direction(pairs_of({{1}, {-2}, {3}}, {{0}, {0}, {0}}), ControlVectorMethod::pca_diff)(0), 0.0);
  // Diffs +1 and -1: one pair each way, the sign stays (+1 after svd_flip); mean-diff would be zero.
  const auto tie = pairs_of({{1}, {-1}}, {{0}, {0}});
  EXPECT_EQ(control_direction(tie, ControlVectorMethod::pca_diff)(0), 1.0);
  test::expect_one_line_error([&] { control_direction(tie, ControlVectorMethod::mean_diff); }, {"identical"});
  // mean-diff of mostly-lower pairs: the mean says up (+4), two pairs of three say down: the vote wins.
  EXPECT_EQ(control_direction(pairs_of({{14}, {-1}, {-1}}, {{0}, {0}, {0}}), ControlVectorMethod::mean_diff)(0), -4.0);
}

TEST(ControlVector, RefusesWhatHasNoDirection) {
  const auto one = pairs_of({{1, 2}}, {{0, 0}});
  EXPECT_EQ(control_direction(one, ControlVectorMethod::mean_diff)(1), 2.0);
  test::expect_one_line_error([&] { control_direction(one, ControlVectorMethod::pca_diff); }, {"pca-diff needs at least 2 pairs"});
  const auto parallel = pairs_of({{1, 1}, {2, 2}}, {{0, 0}, {1, 1}});  // equal diffs: nothing varies
  test::expect_one_line_error([&] { control_direction(parallel, ControlVectorMethod::pca_diff); }, {"do not vary"});
  test::expect_one_line_error([] { parse_control_vector_method("umap"); }, {"--method \"umap\""});
  EXPECT_EQ(method_name(parse_control_vector_method("pca-center")), "pca-center");
}

TEST(ControlVector, FilesInLlamaCppsLayout) {
  const fs::path dir = test::temp_dir("control_vector");
  ControlVector vector;
  vector.model_hint = "llama";
  vector.directions = {{0, {1, 2, 3}}, {1, {4, 5, 6}}, {3, {7, 8, 9}}};
  write_control_vector_gguf((dir / "v.gguf").string(), vector);
  const gguf::File file = gguf::read((dir / "v.gguf").string());
  ASSERT_EQ(file.metadata.size(), 3u);
  EXPECT_EQ(file.metadata[0].first, "general.architecture");
  EXPECT_EQ(file.metadata[0].second.as_string(), "controlvector");
  EXPECT_EQ(file.find("controlvector.model_hint")->as_string(), "llama");
  EXPECT_EQ(file.find("controlvector.layer_count")->type, gguf::ValueType::UINT32);
  EXPECT_EQ(file.find("controlvector.layer_count")->as_unsigned(), 2u);
  ASSERT_EQ(file.tensors.size(), 2u);  // direction.0 cannot be loaded by llama.cpp
  EXPECT_EQ(file.tensors[0].name, "direction.1");
  EXPECT_EQ(file.tensors[1].name, "direction.3");
  EXPECT_EQ(file.tensors[1].ne, (std::vector<uint64_t>{3}));
  EXPECT_EQ(file.tensors[1].data, (std::vector<float>{7, 8, 9}));

  write_control_vector_safetensors((dir / "v.safetensors").string(), vector, {{"method", "pca-diff"}});
  const SafetensorsFile st((dir / "v.safetensors").string());
  EXPECT_EQ(st.names(), (std::vector<std::string>{"direction.0", "direction.1", "direction.3"}));
  EXPECT_EQ(st.view("direction.0").shape, (Shape{3}));
  EXPECT_EQ(st.view("direction.3").f32()[2], 9.0f);
  EXPECT_EQ(st.metadata().at("model_hint"), "llama");
  EXPECT_EQ(st.metadata().at("method"), "pca-diff");

  ControlVector only_zero;
  only_zero.model_hint = "llama";
  only_zero.directions = {{0, {1}}};
  test::expect_one_line_error([&] { write_control_vector_gguf((dir / "z.gguf").string(), only_zero); },
                              {"z.gguf", "no direction llama.cpp can load"});
  ControlVector ragged;
  ragged.directions = {{1, {1, 2}}, {2, {1}}};
  test::expect_one_line_error([&] { write_control_vector_gguf((dir / "r.gguf").string(), ragged); },
                              {"r.gguf: direction.2 has 1 values, the others 2"});
  EXPECT_FALSE(fs::exists(dir / "z.gguf"));
  EXPECT_FALSE(fs::exists(dir / "r.gguf"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace actcap
