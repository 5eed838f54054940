#pragma once
// Compares two captures site by site: two stores (a rerun, a --resume'd twin, fp32 against bf16, another model
// with the same tokenizer) or two records of one store. Records are compared in pairs (record i of A against
// record j of B), row by row (a row is one stored position: [d] for the residual stream, [heads, T] for an
// attention pattern), streaming: one record pair's mapped rows at a time (its sites in parallel on the global
// thread pool, each site by one thread in row order), accumulated in double.
//   rows:  records with the same tokens (checked unless allowed to differ) compare the positions both stored;
//          records with different tokens compare their stored rows in order over the shorter one (row k against
//          row k: position k against position k for full captures, the last token against the last one for
//          --positions last).
//   per site: cosine_mean = mean over rows of cos(a_row, b_row); cosine_min = the smallest; cosine_flat = the
//          cosine of the flattened tensors (every compared row of every pair); relative_l2 = ||a - b|| / ||a||
//          over the same values; max_abs_diff = max |a - b|. Identical rows (zero rows included) have cosine
//          exactly 1, a zero row against a non-zero one 0 (where numpy would give NaN); cosines are clamped to
//          [-1, 1] (rounding can otherwise step past 1 by an ulp).
// Sites present in one store only, or whose rows have different shapes (a wider model), are reported, not
// compared.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "capture/store_reader.h"
#include "core/tensor.h"

namespace actcap {

// One site's differences, accumulated row by row in double.
class DifferenceStats {
 public:
  void add_row(std::span<const double> a, std::span<const double> b);  // equal lengths
  int64_t rows() const { return rows_; }
  int64_t values() const { return values_; }
  double cosine_mean() const;  // NaN without rows
  double cosine_min() const;
  double cosine_flat() const;
  double relative_l2() const;  // +inf where ||a|| = 0 but a != b
  double max_abs_diff() const { return max_abs_diff_; }

 private:
  int64_t rows_ = 0, values_ = 0;
  double cosine_sum_ = 0, cosine_min_ = 0;
  double dot_ = 0, norm2_a_ = 0, norm2_b_ = 0, diff2_ = 0, max_abs_diff_ = 0;
};

// The row pairs (row of A's tensor, row of B's) compared for one record pair, from the records' stored positions.
std::vector<std::pair<int64_t, int64_t>> matched_rows(const std::vector<int64_t>& positions_a,
                                                      const std::vector<int64_t>& positions_b, bool same_tokens);

// A's sites in forward order with B's other sites merged in where B has them (for two models of different shapes).
std::vector<std::string> merged_site_order(const std::vector<std::string>& a, const std::vector<std::string>& b);

struct CompareOptions {
  std::vector<std::string> site_globs = {"all"};  // over the sites of both stores
  std::vector<std::pair<int64_t, int64_t>> pairs;  // (record of A, record of B)
  bool allow_different_tokens = false;
};

struct SiteComparison {
  std::string site;
  Shape row_shape;       // of one row, as both stores hold it
  DifferenceStats stats;
  std::string not_compared;  // why the site was not compared; empty when it was
};

struct Comparison {
  std::string store_a, store_b, model_a, model_b, dtype_a, dtype_b;
  std::vector<std::pair<int64_t, int64_t>> pairs;
  int64_t pairs_with_different_tokens = 0;
  std::vector<SiteComparison> sites;  // forward order
};

// Throws actcap::Error for records with different tokens (unless allowed), for a pair without a common position,
// and for globs that match no site of either store.
Comparison compare_stores(const StoreReader& a, const StoreReader& b, const CompareOptions& options);

// "0-3,7,9-10": increasing numbers as ranges.
std::string ranges_text(const std::vector<int64_t>& numbers);

}  // namespace actcap
