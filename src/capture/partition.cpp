#include "capture/partition.h"

#include <charconv>

#include "capture/store_format.h"
#include "core/error.h"
#include "core/sha256.h"

namespace actcap {

namespace {

using u128 = unsigned __int128;  // N * 2W stays exact for any realistic token total

bool parse_int(std::string_view text, int64_t& value) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

ShardSpec ShardSpec::parse(std::string_view text) {
  const size_t slash = text.find('/');
  ShardSpec spec;
  if (slash == std::string_view::npos || !parse_int(text.substr(0, slash), spec.index) ||
      !parse_int(text.substr(slash + 1), spec.count) || spec.count < 1 || spec.index < 0 || spec.index >= spec.count)
    fail("--shard must be K/N with 0 <= K < N (part K of N, counted from 0), got \"{}\"", text);
  return spec;
}

std::string ShardSpec::str() const { return fmt::format("{}/{}", index, count); }

std::vector<RecordRange> partition_records(const std::vector<int64_t>& weights, int64_t parts) {
  if (parts < 1) fail("cannot split records into {} parts", parts);
  u128 total = 0;
  for (int64_t w : weights) total += u128(w < 0 ? 0 : w);
  std::vector<RecordRange> ranges(static_cast<size_t>(parts));
  const int64_t n = int64_t(weights.size());
  u128 before = 0;
  int64_t part = 0;
  for (int64_t i = 0; i < n; ++i) {
    const u128 w = u128(weights[size_t(i)] < 0 ? 0 : weights[size_t(i)]);
    // floor(N * (C_i + w_i / 2) / W) in integers: floor(N * (2 C_i + w_i) / (2 W)); all-zero weights: by count.
    const int64_t owner = total == 0 ? int64_t(uint64_t(parts) * uint64_t(i) / uint64_t(n))
                                     : int64_t(u128(parts) * (2 * before + w) / (2 * total));
    while (part < owner) {  // owners never decrease: close the parts before this record's
      ranges[size_t(part)].end = i;
      ranges[size_t(++part)].begin = i;
    }
    before += w;
  }
  ranges[size_t(part)].end = n;
  for (int64_t k = part + 1; k < parts; ++k) ranges[size_t(k)] = {n, n};
  return ranges;
}

std::string job_identity(const nlohmann::json& provenance) {
  nlohmann::json view = provenance;
  for (std::string_view key : {std::string_view("command_line"), std::string_view("tool"), store::kPartKey})
    view.erase(std::string(key));
  if (view.contains("compute") && view["compute"].is_object() && view["compute"].contains("device") &&
      view["compute"]["device"].is_string()) {
    const std::string device = view["compute"]["device"];
    view["compute"]["device"] = device.substr(0, device.find(':'));
  }
  const std::string text = view.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return sha256_hex(text.data(), text.size());
}

bool reads_stdin(const std::vector<InputSource>& sources) {
  for (const auto& source : sources)
    if ((source.kind == InputSource::Kind::PromptsFile || source.kind == InputSource::Kind::Jsonl) &&
        source.value == "-")
      return true;
  return false;
}

}  // namespace actcap
