// actcap rotation: synthetic stores where the teacher is the student times a known orthogonal matrix (plus
// noise); the estimate recovers it, and every number of the ledger and the transport files equals a numpy float64
// reference computed from the same stores (tests/analysis/check_rotation.py, torch for the .pt).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <unistd.h>

#include "analysis/procrustes.h"
#include "analysis/transport.h"
#include "capture/store_writer.h"
#include "../test_util.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

// Rows of a student: anisotropic Gaussian (distinct variances, so the PCA axes are well defined) plus an offset.
Eigen::MatrixXd student_rows(std::mt19937& rng, int64_t tokens, int64_t width) {
  std::normal_distribution<double> normal;
  Eigen::MatrixXd rows(tokens, width);
  for (int64_t i = 0; i < tokens; ++i)
    for (int64_t j = 0; j < width; ++j) rows(i, j) = normal(rng) * (1.0 + 0.5 * double(j)) + 0.3 * double(j);
  return rows;
}

Eigen::MatrixXd random_orthogonal(std::mt19937& rng, int64_t rows, int64_t cols) {
  std::normal_distribution<double> normal;
  Eigen::MatrixXd a(rows, cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) a(i, j) = normal(rng);
  return Eigen::HouseholderQR<Eigen::MatrixXd>(a).householderQ() * Eigen::MatrixXd::Identity(rows, cols);
}

// A store of `site` holding `all` ([tokens, width]) split into records of `lengths` tokens; `token_offset` shifts
// the token ids (to make stores that do not pair).
void write_store(const std::string& dir, const std::string& site, const Eigen::MatrixXd& all,
                 const std::vector<int64_t>& lengths, int token_offset = 0) {
  StoreOptions options;
  options.dir = dir;
  options.sites = {site};
  StoreWriter writer(options, {{"model", {{"path", "synthetic"}}}});
  int64_t row = 0;
  for (size_t r = 0; r < lengths.size(); ++r) {
    RecordInfo info;
    info.record = int64_t(r);
    info.id = "r" + std::to_string(r);
    for (int64_t t = 0; t < lengths[r]; ++t) {
      info.token_ids.push_back(int32_t(10 * r + t) + token_offset);
      info.positions.push_back(t);
    }
    info.n_prompt = int(lengths[r]);
    Tensor rows({lengths[r], all.cols()});
    for (int64_t t = 0; t < lengths[r]; ++t)
      for (int64_t j = 0; j < all.cols(); ++j) rows.f32()[t * all.cols() + j] = float(all(row + t, j));
    row += lengths[r];
    std::vector<std::pair<std::string, Tensor>> sites;
    sites.emplace_back(site, std::move(rows));
    writer.add_record(info, sites);
  }
  writer.finish();
}

class Rotation : public ::testing::Test {
 protected:
  void SetUp() override { work_ = test::temp_dir("rotation"); }
  void TearDown() override { fs::remove_all(work_); }
  std::string at(const std::string& name) const { return (work_ / name).string(); }

  // Student [N, 12]; teacher = student·Q + noise + offset, Q a known orthogonal matrix.
  void write_pair(double noise) {
    std::mt19937 rng(7);
    const Eigen::MatrixXd s = student_rows(rng, 60, 12);
    q_ = random_orthogonal(rng, 12, 12);
    std::normal_distribution<double> normal;
    Eigen::MatrixXd t = s * q_;
    for (Eigen::Index i = 0; i < t.size(); ++i) t.data()[i] += noise * normal(rng) + 2.0;
    write_store(at("student"), "hidden_states.2", s, lengths_);
    write_store(at("teacher"), "hidden_states.2", t, lengths_);
  }
  fs::path work_;
  Eigen::MatrixXd q_;
  const std::vector<int64_t> lengths_ = {25, 20, 15};
};

TEST(Procrustes, RecoversAnExactRotationAndSortsSingularValues) {
  std::mt19937 rng(1);
  const Eigen::MatrixXd s = student_rows(rng, 40, 6), q = random_orthogonal(rng, 6, 6);
  const Procrustes p = orthogonal_procrustes(s.transpose() * (s * q));
  EXPECT_LT((p.rotation - q).cwiseAbs().maxCoeff(), 1e-10);
  for (Eigen::Index i = 1; i < p.singular_values.size(); ++i) EXPECT_GE(p.singular_values(i - 1), p.singular_values(i));
  const PcaBasis pca = principal_axes(s.transpose() * s, 3);
  EXPECT_LT((pca.basis.transpose() * pca.basis - Eigen::MatrixXd::Identity(3, 3)).cwiseAbs().maxCoeff(), 1e-12);
  for (Eigen::Index j = 0; j < 3; ++j) EXPECT_GT(pca.basis.col(j).maxCoeff(), -pca.basis.col(j).minCoeff());
  EXPECT_GT(pca.explained_variance, 0.0);
  EXPECT_LT(pca.explained_variance, 1.0);
}

TEST_F(Rotation, RecoversAKnownOrthogonalMatrixFromNoisyStores) {
  write_pair(1e-3);
  const StoreReader student(at("student")), teacher(at("teacher"));
  check_paired_stores(student, teacher);
  const Transport t = estimate_transport(student, teacher, "hidden_states.2", 0);
  EXPECT_EQ(t.components, 12);
  EXPECT_EQ(t.tokens, 60);
  EXPECT_LT((t.linear_map() - q_).cwiseAbs().maxCoeff(), 1e-2);  // linear_map is orthogonal when k = d
  EXPECT_GT(t.cosine_after, 0.9999);
  ASSERT_TRUE(t.cosine_before.has_value());
  EXPECT_LT(*t.cosine_before, 0.9);
  EXPECT_LT(t.residual_error, 1e-2);
  EXPECT_NEAR(t.explained_variance_student, 1.0, 1e-12);
}

TEST_F(Rotation, RefusesStoresOfOtherInputsAndBadChoices) {
  std::mt19937 rng(3);
  const Eigen::MatrixXd s = student_rows(rng, 60, 12);
  write_store(at("student"), "hidden_states.2", s, lengths_);
  write_store(at("shifted"), "hidden_states.2", s, lengths_, 1);
  write_store(at("fewer"), "hidden_states.2", s.topRows(45), {25, 20});
  const StoreReader student(at("student")), shifted(at("shifted")), fewer(at("fewer"));
  test::expect_one_line_error([&] { check_paired_stores(student, shifted); }, {at("shifted"), "record 0", "token ids"});
  test::expect_one_line_error([&] { check_paired_stores(student, fewer); }, {at("fewer"), "2 records", "3"});
  test::expect_one_line_error([&] { estimate_transport(student, student, "hidden_states.7", 0); },
                              {at("student"), "no site 'hidden_states.7'"});
  test::expect_one_line_error([&] { estimate_transport(student, student, "hidden_states.2", 13); },
                              {"--components 13", "12"});
  EXPECT_EQ(transport_site_name("model.layers.2"), "hidden_states.3");
  EXPECT_EQ(transport_site_name("blocks.1.hook_resid_post"), "blocks.1.hook_resid_post");
}

int run(const std::string& arguments, std::string* output = nullptr) {
  const std::string log = fs::temp_directory_path() / ("actcap-rotation-" + std::to_string(::getpid()) + ".log");
  const int status = std::system((std::string(ACTCAP_BINARY) + " " + arguments + " >" + log + " 2>&1").c_str());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  if (output) *output = text.str();
  fs::remove(log);
  return status;
}

TEST_F(Rotation, LedgerAndFilesEqualANumpyReference) {
  if (std::system("/usr/bin/python3 -c 'import numpy, torch' 2>/dev/null") != 0) GTEST_SKIP() << "no numpy/torch";
  write_pair(5e-2);
  // A narrower teacher (8 wide: the student through an orthonormal 12x8 map): cosine_before is null, k <= 8.
  std::mt19937 rng(11);
  const StoreReader student_reader(at("student"));
  Eigen::MatrixXd s(60, 12);
  int64_t row = 0;
  for (int64_t r = 0; r < 3; ++r) {
    const Tensor rows = student_reader.read_f32(r, "hidden_states.2");
    for (int64_t t = 0; t < rows.dim(0); ++t, ++row)
      for (int64_t j = 0; j < 12; ++j) s(row, j) = rows.f32()[t * 12 + j];
  }
  write_store(at("narrow"), "hidden_states.2", s * random_orthogonal(rng, 12, 8), lengths_);

  std::string out;
  ASSERT_EQ(run("rotation --student " + at("student") + " --teacher " + at("teacher") +
                " --layer model.layers.1 --ledger " + at("run/rotations.jsonl"), &out), 0) << out;
  EXPECT_NE(out.find("hidden_states.2: k=12 tokens=60"), std::string::npos) << out;
  ASSERT_EQ(run("rotation --student " + at("student") + " --teacher " + at("narrow") +
                " --layer hidden_states.2 --components 5 --ledger " + at("run/rotations.jsonl"), &out), 0) << out;
  EXPECT_TRUE(fs::is_directory(at("run/transports")));
  // Errors leave the ledger as it was.
  EXPECT_NE(run("rotation --student " + at("student") + " --teacher " + at("teacher") +
                " --layer hidden_states.2 --layer hidden_states.9 --ledger " + at("run/rotations.jsonl"), &out), 0);
  EXPECT_NE(out.find("no site 'hidden_states.9'"), std::string::npos) << out;

  const std::string command = std::string("/usr/bin/python3 ") + ACTCAP_SOURCE_DIR +
                              "/tests/analysis/check_rotation.py " + at("run/rotations.jsonl") + " 2";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

}  // namespace
}  // namespace actcap
