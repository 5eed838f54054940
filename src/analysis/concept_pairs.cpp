#include "analysis/concept_pairs.h"

#include <map>

#include "capture/store_reader.h"
#include "core/error.h"

namespace actcap {
namespace {

std::optional<int> number_after(const std::string& text, const std::string& prefix, const std::string& suffix) {
  if (text.size() <= prefix.size() + suffix.size() || text.compare(0, prefix.size(), prefix) != 0 ||
      text.compare(text.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  const std::string digits = text.substr(prefix.size(), text.size() - prefix.size() - suffix.size());
  if (digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoi(digits);
}

}  // namespace

StorePairs store_pairs(const StoreReader& store) {
  std::map<int64_t, std::pair<int64_t, int64_t>> by_pair;  // pair -> (positive record, negative record)
  StorePairs pairs;
  for (const nlohmann::json& record : store.records()) {
    const int64_t number = record.value("record", int64_t(-1));
    const nlohmann::json meta = record.value("meta", nlohmann::json());
    if (!meta.is_object() || !meta.contains("side") || !meta["side"].is_string() || !meta.contains("pair") ||
        !meta["pair"].is_number_integer() || meta["pair"].get<int64_t>() < 0)
      fail("{}: record {} has no concept label (\"meta\": {{\"side\", \"pair\"}}): make the store with actcap concept",
           store.dir(), number);
    const std::string side = meta["side"].get<std::string>();
    if (side != "positive" && side != "negative")
      fail("{}: record {}: side \"{}\" is neither positive nor negative", store.dir(), number, side);
    auto [entry, added] = by_pair.try_emplace(meta["pair"].get<int64_t>(), -1, -1);
    int64_t& slot = side == "positive" ? entry->second.first : entry->second.second;
    if (slot >= 0) fail("{}: records {} and {} are both the {} side of pair {}", store.dir(), slot, number, side, entry->first);
    slot = number;
    if (meta.contains("concept") && meta["concept"].is_string()) pairs.concept_name = meta["concept"].get<std::string>();
  }
  if (by_pair.empty()) fail("{}: the store holds no records", store.dir());
  int64_t expected = 0;
  for (const auto& [pair, records] : by_pair) {
    if (pair != expected) fail("{}: pair {} is missing (pairs are numbered from 0)", store.dir(), expected);
    if (records.first < 0 || records.second < 0)
      fail("{}: pair {} has no {} side", store.dir(), pair, records.first < 0 ? "positive" : "negative");
    pairs.positive.push_back(records.first);
    pairs.negative.push_back(records.second);
    ++expected;
  }
  return pairs;
}

RowReduction parse_row_reduction(const std::string& text) {
  if (text == "last") return RowReduction::last;
  if (text == "mean") return RowReduction::mean;
  fail("--positions \"{}\": expected last or mean", text);
}

PairMatrices pair_matrices(const StoreReader& store, const StorePairs& pairs, const std::string& site,
                           RowReduction reduction) {
  const int64_t n = int64_t(pairs.positive.size());
  PairMatrices matrices;
  int64_t width = -1;
  auto fill = [&](Eigen::MatrixXd& matrix, int64_t row, int64_t record) {
    const Tensor rows = store.read_f32(record, site);
    if (rows.shape().size() != 2 || rows.shape()[0] == 0)
      fail("{}: site {} of record {} has shape {}: expected [positions, width]", store.dir(), site, record,
           shape_string(rows.shape()));
    if (width < 0) {
      width = rows.shape()[1];
      matrices.positive.setZero(n, width);
      matrices.negative.setZero(n, width);
    } else if (rows.shape()[1] != width) {
      fail("{}: site {} is {} wide in record {} but {} in others", store.dir(), site, rows.shape()[1], record, width);
    }
    const int64_t count = rows.shape()[0];
    const float* data = rows.f32();
    if (reduction == RowReduction::last) {
      for (int64_t j = 0; j < width; ++j) matrix(row, j) = data[(count - 1) * width + j];
      return;
    }
    for (int64_t t = 0; t < count; ++t)
      for (int64_t j = 0; j < width; ++j) matrix(row, j) += data[t * width + j];
    matrix.row(row) /= double(count);
  };
  for (int64_t i = 0; i < n; ++i) {
    fill(matrices.positive, i, pairs.positive[size_t(i)]);
    fill(matrices.negative, i, pairs.negative[size_t(i)]);
  }
  return matrices;
}

std::map<int, std::string> block_output_sites(const StoreReader& store) {
  std::map<int, std::string> sites;
  for (const std::string& site : store.sites())
    if (const auto block = output_block_of_site(site)) {
      const auto [it, added] = sites.emplace(*block, site);
      if (!added)
        fail("{}: sites {} and {} both hold block {}'s output: keep one", store.dir(), it->second, site, *block);
    }
  if (sites.empty())
    fail("{}: no site holds a block's output (hidden_states.N with N >= 1, or blocks.N.hook_resid_post)", store.dir());
  return sites;
}

std::optional<int> output_block_of_site(const std::string& site) {
  if (auto j = number_after(site, "hidden_states.", ""); j && *j >= 1) return *j - 1;
  if (auto n = number_after(site, "blocks.", ".hook_resid_post")) return *n;
  return std::nullopt;
}

}  // namespace actcap
