#include "capture/store_format.h"

#include <algorithm>
#include <limits>
#include <map>
#include <type_traits>

#include "core/error.h"
#include "core/sha256.h"

namespace actcap {

using json = nlohmann::json;

std::string_view store_layout_name(StoreLayout layout) {
  return layout == StoreLayout::PerRecord ? "per_record" : "token_stream";
}

StoreLayout parse_store_layout(std::string_view name) {
  if (name == "per_record") return StoreLayout::PerRecord;
  if (name == "token_stream") return StoreLayout::TokenStream;
  fail("unknown store layout '{}' (expected per_record or token_stream)", name);
}

namespace store {

namespace {

// Keys the format owns in manifest.json; the rest is the caller's provenance.
const char* const kManifestKeys[] = {"format",  "format_version", "layout",          "dtype",
                                     "sites",   "shards",         "complete",        "records_sha256",
                                     "records_bytes", "metadata_sha256", "metadata_bytes", "manifest_sha256"};

std::string dump_compact(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The number type inside a JSON value read as T (vectors and maps of numbers included).
template <typename T>
struct element {
  using type = T;
};
template <typename T>
struct element<std::vector<T>> {
  using type = typename element<T>::type;
};
template <typename K, typename T>
struct element<std::map<K, T>> {
  using type = typename element<T>::type;
};

// Whether every number in `v` is an integer that I holds. nlohmann's get<I>() casts a float such as 1e300 to an
// integer (undefined behaviour) and narrows silently (found by fuzzing the store reader).
template <typename I>
bool integers_fit(const json& v) {
  if (v.is_array() || v.is_object())
    return std::all_of(v.begin(), v.end(), [](const json& e) { return integers_fit<I>(e); });
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= uint64_t(std::numeric_limits<I>::max());
  if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    return x >= 0 ? uint64_t(x) <= uint64_t(std::numeric_limits<I>::max())
                  : std::is_signed_v<I> && x >= int64_t(std::numeric_limits<I>::min());
  }
  return false;
}

template <typename T>
T get(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) fail("{}: no \"{}\"", where, key);
  using Number = typename element<T>::type;
  if constexpr (std::is_integral_v<Number> && !std::is_same_v<Number, bool>)
    if (!integers_fit<Number>(*it))
      fail("{}: \"{}\" is {}, not of the expected type", where, key, dump_compact(*it).substr(0, 80));
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail("{}: \"{}\" is {}, not of the expected type", where, key, dump_compact(*it).substr(0, 80));
  }
}

}  // namespace

std::optional<int64_t> shard_index_of(std::string_view name) {
  constexpr std::string_view prefix = "shard-", suffix = ".safetensors";
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix))
    return std::nullopt;
  const std::string_view digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const int64_t index = std::stoll(std::string(digits));
  if (shard_file_name(index) != name) return std::nullopt;
  return index;
}

bool is_temporary_file(std::string_view name) {
  return name.starts_with(std::string(kManifestFile) + ".tmp-") ||
         (name.starts_with("shard-") && name.find(".safetensors.tmp-") != std::string_view::npos);
}

json RecordLine::to_json() const {
  json line = extra;
  line["record"] = record;
  line["id"] = id;
  line["token_ids"] = token_ids;
  line["n_prompt"] = n_prompt;
  line["positions"] = positions;
  return line;
}

std::string RecordLine::to_line() const { return dump_compact(to_json()) + "\n"; }

RecordLine RecordLine::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: not a JSON object", where);
  RecordLine r;
  r.record = get<int64_t>(j, "record", where);
  r.id = get<std::string>(j, "id", where);
  r.token_ids = get<std::vector<int32_t>>(j, "token_ids", where);
  r.n_prompt = get<int64_t>(j, "n_prompt", where);
  r.positions = get<std::vector<int64_t>>(j, "positions", where);
  if (r.n_prompt < 0 || r.n_prompt > int64_t(r.token_ids.size()))
    fail("{}: n_prompt {} for {} tokens", where, r.n_prompt, r.token_ids.size());
  for (int64_t p : r.positions)
    if (p < 0 || p >= int64_t(r.token_ids.size()))
      fail("{}: position {} outside its {} tokens", where, p, r.token_ids.size());
  r.extra = j;
  for (const char* key : {"record", "id", "token_ids", "n_prompt", "positions"}) r.extra.erase(key);
  return r;
}

const std::string* RecordLine::text() const {
  auto it = extra.find("text");
  return it != extra.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

json MetadataLine::to_json() const {
  json offsets_json = json::object();
  for (size_t s = 0; s < sites.size(); ++s) offsets_json[sites[s]] = {offsets[s].first, offsets[s].second};
  return {{"record", record},
          {"id", id},
          {"text_sha256", text_sha256 ? json(*text_sha256) : json(nullptr)},
          {"token_span", {span_begin, span_end}},
          {"sites", sites},
          {"dtype", dtype_name(dtype)},
          {"shard", shard},
          {"offsets", std::move(offsets_json)},
          {"shard_sha256", shard_sha256}};
}

std::string MetadataLine::to_line() const { return dump_compact(to_json()) + "\n"; }

MetadataLine MetadataLine::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: not a JSON object", where);
  MetadataLine m;
  m.record = get<int64_t>(j, "record", where);
  m.id = get<std::string>(j, "id", where);
  const json text_sha = j.value("text_sha256", json());
  if (text_sha.is_string()) m.text_sha256 = text_sha.get<std::string>();
  else if (!text_sha.is_null()) fail("{}: text_sha256 must be a string or null", where);
  const auto span = get<std::vector<int64_t>>(j, "token_span", where);
  if (span.size() != 2 || span[0] < 0 || span[1] < span[0]) fail("{}: malformed token_span {}", where, dump_compact(j.at("token_span")));
  m.span_begin = span[0];
  m.span_end = span[1];
  m.sites = get<std::vector<std::string>>(j, "sites", where);
  const std::string dtype = get<std::string>(j, "dtype", where);
  try {
    m.dtype = parse_dtype(dtype);
  } catch (const Error&) {
    fail("{}: unknown dtype \"{}\"", where, dtype.substr(0, 80));
  }
  m.shard = get<std::string>(j, "shard", where);
  const auto offsets = get<std::map<std::string, std::vector<uint64_t>>>(j, "offsets", where);
  if (offsets.size() != m.sites.size()) fail("{}: offsets must name every site", where);
  for (const auto& site : m.sites) {
    auto it = offsets.find(site);
    if (it == offsets.end() || it->second.size() != 2 || it->second[0] > it->second[1])
      fail("{}: offsets of '{}' missing or malformed", where, site);
    m.offsets.emplace_back(it->second[0], it->second[1]);
  }
  m.shard_sha256 = get<std::string>(j, "shard_sha256", where);
  return m;
}

namespace {

json manifest_json(const Manifest& m) {
  json j = m.provenance;
  j["format"] = kFormat;
  j["format_version"] = m.format_version;
  j["layout"] = store_layout_name(m.layout);
  j["dtype"] = dtype_name(m.dtype);
  j["sites"] = m.sites;
  j["shards"] = json::array();
  for (const auto& s : m.shards) j["shards"].push_back({{"file", s.file}, {"sha256", s.sha256}, {"bytes", s.bytes}});
  j["complete"] = m.complete;
  if (m.records) {
    j["records_sha256"] = m.records->sha256;
    j["records_bytes"] = m.records->bytes;
  }
  if (m.metadata) {
    j["metadata_sha256"] = m.metadata->sha256;
    j["metadata_bytes"] = m.metadata->bytes;
  }
  return j;
}

std::string canonical_sha256(const json& j) {
  const std::string text = dump_compact(j);
  return sha256_hex(text.data(), text.size());
}

}  // namespace

std::string Manifest::to_text() const {
  json j = manifest_json(*this);
  if (format_version >= 2) j["manifest_sha256"] = canonical_sha256(j);
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

bool Manifest::is_format_key(std::string_view key) {
  return std::find(std::begin(kManifestKeys), std::end(kManifestKeys), key) != std::end(kManifestKeys);
}

Manifest Manifest::parse(std::string_view text, const std::string& path) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("{}: not valid JSON", path);
  const auto format = j.find("format");  // of any type (value() would throw on a non-string)
  if (format == j.end() || !format->is_string() || *format != kFormat) fail("{}: not an actcap store manifest", path);
  Manifest m;
  const json version = j.value("format_version", json());
  if (!integers_fit<int>(version) || !version.is_number() || version.get<int>() < kOldestReadableVersion ||
      version.get<int>() > kFormatVersion)
    fail("{}: unsupported format_version {} (this actcap reads {} to {})", path, dump_compact(version),
         kOldestReadableVersion, kFormatVersion);
  m.format_version = version.get<int>();
  if (m.format_version >= 2) {
    const std::string stated = get<std::string>(j, "manifest_sha256", path);
    json without = j;
    without.erase("manifest_sha256");
    if (canonical_sha256(without) != stated)
      fail("{}: manifest_sha256 does not match its contents (the manifest was edited)", path);
  }
  try {
    m.layout = parse_store_layout(get<std::string>(j, "layout", path));
    m.dtype = parse_dtype(get<std::string>(j, "dtype", path));
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
  m.sites = get<std::vector<std::string>>(j, "sites", path);
  m.complete = get<bool>(j, "complete", path);
  const json shards = j.value("shards", json());
  if (!shards.is_array()) fail("{}: \"shards\" must be an array", path);
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string where = fmt::format("{}: shards[{}]", path, k);
    if (!shards[k].is_object()) fail("{}: not an object", where);
    m.shards.push_back({get<std::string>(shards[k], "file", where), get<std::string>(shards[k], "sha256", where),
                        get<uint64_t>(shards[k], "bytes", where)});
  }
  if (m.format_version >= 2) {
    m.records = IndexDigest{get<std::string>(j, "records_sha256", path), get<uint64_t>(j, "records_bytes", path)};
    m.metadata = IndexDigest{get<std::string>(j, "metadata_sha256", path), get<uint64_t>(j, "metadata_bytes", path)};
  }
  for (const auto& [key, value] : j.items())
    if (!is_format_key(key)) m.provenance[key] = value;
  return m;
}

json PartInfo::to_json() const {
  return {{"index", index}, {"count", count}, {"records", {first_record, end_record}},
          {"total_records", total_records}, {"job_sha256", job_sha256}};
}

std::optional<PartInfo> PartInfo::of(const json& provenance, const std::string& path) {
  const auto it = provenance.find(kPartKey);
  if (it == provenance.end()) return std::nullopt;
  const std::string where = fmt::format("{}: \"{}\"", path, kPartKey);
  if (!it->is_object()) fail("{}: not an object", where);
  PartInfo part;
  part.index = get<int64_t>(*it, "index", where);
  part.count = get<int64_t>(*it, "count", where);
  const auto range = get<std::vector<int64_t>>(*it, "records", where);
  part.total_records = get<int64_t>(*it, "total_records", where);
  part.job_sha256 = get<std::string>(*it, "job_sha256", where);
  if (range.size() != 2) fail("{}: \"records\" must be [first, end]", where);
  part.first_record = range[0];
  part.end_record = range[1];
  if (part.count < 1 || part.index < 0 || part.index >= part.count || part.first_record < 0 ||
      part.first_record > part.end_record || part.end_record > part.total_records)
    fail("{}: part {}/{} of records [{}, {}) out of {} is inconsistent", where, part.index, part.count,
         part.first_record, part.end_record, part.total_records);
  return part;
}

std::optional<json> parse_object(std::string_view line) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

}  // namespace store
}  // namespace actcap
