#include "analysis/compare.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

#include "analysis/site_rows.h"
#include "capture/sites.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace actcap {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<int32_t> tokens_of(const nlohmann::json& record) { return record.at("token_ids").get<std::vector<int32_t>>(); }
std::vector<int64_t> positions_of(const nlohmann::json& record) { return record.at("positions").get<std::vector<int64_t>>(); }

// Refuses a pair whose tokens differ, saying where.
void check_same_tokens(const StoreReader& a, int64_t record_a, const std::vector<int32_t>& tokens_a, const StoreReader& b,
                       int64_t record_b, const std::vector<int32_t>& tokens_b) {
  size_t p = 0;
  while (p < tokens_a.size() && p < tokens_b.size() && tokens_a[p] == tokens_b[p]) ++p;
  const std::string where = p < tokens_a.size() && p < tokens_b.size()
                                ? fmt::format("token {} at position {} against {}", tokens_a[p], p, tokens_b[p])
                                : fmt::format("{} tokens against {}", tokens_a.size(), tokens_b.size());
  fail("{}: record {} and {} record {} hold different tokens ({}); --allow-different-tokens compares them anyway",
       a.dir(), record_a, b.dir(), record_b, where);
}

std::string model_of(const StoreReader& store) {
  return store.manifest().value("model", nlohmann::json::object()).value("path", std::string());
}

// cos(a, b) from a·b, |a|², |b|² and |a - b|²: exactly 1 for identical values, whatever the rounding of the
// sums (which the compiler may contract differently for a·a and a·b). Squares of values read from 32- and
// 16-bit floats neither overflow nor underflow in double.
double cosine_of(double dot, double norm2_a, double norm2_b, double diff2) {
  if (diff2 == 0) return 1.0;
  if (norm2_a == 0 || norm2_b == 0) return std::isnan(diff2) ? kNaN : 0.0;
  return std::clamp(dot / std::sqrt(norm2_a * norm2_b), -1.0, 1.0);
}

}  // namespace

void DifferenceStats::add_row(std::span<const double> a, std::span<const double> b) {
  double dot = 0, norm2_a = 0, norm2_b = 0, diff2 = 0, max_abs = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = b[i], d = x - y;
    dot += x * y;
    norm2_a += x * x;
    norm2_b += y * y;
    diff2 += d * d;
    max_abs = std::isnan(d) || std::isnan(max_abs) ? kNaN : std::max(max_abs, std::fabs(d));
  }
  const double cosine = cosine_of(dot, norm2_a, norm2_b, diff2);
  cosine_min_ = rows_ == 0 || std::isnan(cosine) ? cosine : std::min(cosine_min_, cosine);
  cosine_sum_ += cosine;
  ++rows_;
  values_ += int64_t(a.size());
  dot_ += dot, norm2_a_ += norm2_a, norm2_b_ += norm2_b, diff2_ += diff2;
  max_abs_diff_ = std::isnan(max_abs) || std::isnan(max_abs_diff_) ? kNaN : std::max(max_abs_diff_, max_abs);
}

double DifferenceStats::cosine_mean() const { return rows_ ? cosine_sum_ / double(rows_) : kNaN; }
double DifferenceStats::cosine_min() const { return rows_ ? cosine_min_ : kNaN; }
double DifferenceStats::cosine_flat() const { return rows_ ? cosine_of(dot_, norm2_a_, norm2_b_, diff2_) : kNaN; }
double DifferenceStats::relative_l2() const {
  if (!rows_) return kNaN;
  if (norm2_a_ == 0) return diff2_ == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(diff2_) / std::sqrt(norm2_a_);
}

std::vector<std::pair<int64_t, int64_t>> matched_rows(const std::vector<int64_t>& positions_a,
                                                      const std::vector<int64_t>& positions_b, bool same_tokens) {
  std::vector<std::pair<int64_t, int64_t>> rows;
  if (!same_tokens) {
    for (size_t k = 0; k < std::min(positions_a.size(), positions_b.size()); ++k) rows.emplace_back(int64_t(k), int64_t(k));
    return rows;
  }
  std::map<int64_t, int64_t> row_in_b;
  for (size_t k = 0; k < positions_b.size(); ++k) row_in_b[positions_b[k]] = int64_t(k);
  for (size_t k = 0; k < positions_a.size(); ++k) {
    auto it = row_in_b.find(positions_a[k]);
    if (it != row_in_b.end()) rows.emplace_back(int64_t(k), it->second);
  }
  return rows;
}

std::vector<std::string> merged_site_order(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> merged = a;
  size_t insert_at = 0;  // after the last site of B already placed
  for (const std::string& site : b) {
    auto it = std::find(merged.begin(), merged.end(), site);
    if (it != merged.end()) {
      insert_at = size_t(it - merged.begin()) + 1;
    } else {
      merged.insert(merged.begin() + std::ptrdiff_t(insert_at), site);
      ++insert_at;
    }
  }
  return merged;
}

Comparison compare_stores(const StoreReader& a, const StoreReader& b, const CompareOptions& options) {
  Comparison result;
  result.store_a = a.dir(), result.store_b = b.dir();
  result.model_a = model_of(a), result.model_b = model_of(b);
  result.dtype_a = dtype_name(a.dtype()), result.dtype_b = dtype_name(b.dtype());
  result.pairs = options.pairs;

  const std::vector<std::string> all_sites = merged_site_order(a.sites(), b.sites());
  std::set<std::string> picked;
  for (const std::string& globs : options.site_globs)
    for (const std::string& site : match_site_globs(globs, all_sites, fmt::format("the stores {} and {}", a.dir(), b.dir()),
                                                    fmt::format("`actcap ls {}`", a.dir())))
      picked.insert(site);
  const std::set<std::string> in_a(a.sites().begin(), a.sites().end()), in_b(b.sites().begin(), b.sites().end());
  for (const std::string& site : all_sites) {
    if (!picked.count(site)) continue;
    SiteComparison comparison{site, {}, {}, {}};
    if (!in_b.count(site)) comparison.not_compared = "only in A";
    if (!in_a.count(site)) comparison.not_compared = "only in B";
    result.sites.push_back(std::move(comparison));
  }

  ThreadPool& pool = ThreadPool::global();
  for (const auto& [record_a, record_b] : options.pairs) {
    const nlohmann::json &line_a = a.record(record_a), &line_b = b.record(record_b);
    const std::vector<int32_t> tokens_a = tokens_of(line_a), tokens_b = tokens_of(line_b);
    const bool same_tokens = tokens_a == tokens_b;
    if (!same_tokens) {
      if (!options.allow_different_tokens) check_same_tokens(a, record_a, tokens_a, b, record_b, tokens_b);
      ++result.pairs_with_different_tokens;
    }
    const std::vector<int64_t> positions_a = positions_of(line_a), positions_b = positions_of(line_b);
    const auto rows = matched_rows(positions_a, positions_b, same_tokens);
    if (rows.empty())
      fail("{}: record {} and {} record {} stored no position in common (positions {} against {})", a.dir(), record_a,
           b.dir(), record_b, ranges_text(positions_a), ranges_text(positions_b));
    // Sites in parallel: each is accumulated by one thread in row order, so the numbers do not depend on threads.
    pool.parallel_for(0, int64_t(result.sites.size()), 1, [&](int64_t begin, int64_t end) {
      std::vector<double> row_a, row_b;
      for (int64_t i = begin; i < end; ++i) {
        SiteComparison& site = result.sites[size_t(i)];
        if (!site.not_compared.empty()) continue;
        const TensorView view_a = a.view(record_a, site.site), view_b = b.view(record_b, site.site);
        const int axis = position_axis(site.site);
        const Shape shape_a = row_shape(view_a, axis), shape_b = row_shape(view_b, axis);
        if (shape_a != shape_b) {
          site.not_compared = fmt::format("rows are {} in A (record {}) but {} in B (record {})", shape_string(shape_a),
                                          record_a, shape_string(shape_b), record_b);
          site.stats = {};
          continue;
        }
        site.row_shape = shape_a;
        for (const auto& [row_in_a, row_in_b] : rows) {
          row_values(view_a, axis, row_in_a, row_a);
          row_values(view_b, axis, row_in_b, row_b);
          site.stats.add_row(row_a, row_b);
        }
      }
    });
  }
  return result;
}

std::string ranges_text(const std::vector<int64_t>& numbers) {
  std::string text;
  for (size_t i = 0; i < numbers.size();) {
    size_t j = i;
    while (j + 1 < numbers.size() && numbers[j + 1] == numbers[j] + 1) ++j;
    if (!text.empty()) text += ',';
    text += j == i ? std::to_string(numbers[i]) : fmt::format("{}-{}", numbers[i], numbers[j]);
    i = j + 1;
  }
  return text;
}

}  // namespace actcap
