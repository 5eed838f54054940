#include "export/store_selection.h"

#include <algorithm>
#include <set>

#include "capture/sites.h"
#include "core/error.h"

namespace actcap {

namespace {

bool all_digits(const std::string& text) {
  return !text.empty() && text.size() <= 18 && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<int64_t> store_record_numbers(const StoreReader& store) {
  std::vector<int64_t> numbers;
  for (const auto& record : store.records()) numbers.push_back(record.at("record").get<int64_t>());
  return numbers;
}

}  // namespace

std::vector<std::string> select_sites(const StoreReader& store, const std::vector<std::string>& globs) {
  std::set<std::string> picked;
  for (const std::string& argument : globs)
    for (const std::string& site : match_site_globs(argument, store.sites(), "the store " + store.dir(),
                                                    fmt::format("`actcap ls {}`", store.dir())))
      picked.insert(site);
  std::vector<std::string> selected;
  for (const std::string& site : store.sites())
    if (picked.count(site)) selected.push_back(site);
  return selected;
}

std::string describe_records(const StoreReader& store) {
  const std::vector<int64_t> numbers = store_record_numbers(store);
  if (numbers.empty()) return "no records";
  if (numbers.size() == 1) return fmt::format("only record {}", numbers[0]);
  if (numbers.back() - numbers.front() + 1 == int64_t(numbers.size()))
    return fmt::format("records {}-{}", numbers.front(), numbers.back());
  std::string list;
  for (size_t i = 0; i < std::min<size_t>(numbers.size(), 6); ++i) list += (i ? ", " : "") + std::to_string(numbers[i]);
  return fmt::format("records {}{}", list, numbers.size() > 6 ? ", ..." : "");
}

int64_t parse_record_number(const std::string& text, const std::string& option) {
  if (!all_digits(text)) fail("{} {}: expected a record number (0, 1, 2, ...)", option, text);
  return std::stoll(text);
}

std::vector<int64_t> select_records(const StoreReader& store, const std::string& spec, const std::string& option) {
  const std::vector<int64_t> numbers = store_record_numbers(store);
  if (numbers.empty()) fail("{}: the store holds no records", store.dir());
  if (spec == "all") return numbers;
  std::set<int64_t> wanted;
  for (const std::string& part : split_list(spec)) {
    const size_t dash = part.find('-');
    const std::string first = part.substr(0, dash), last = dash == std::string::npos ? first : part.substr(dash + 1);
    if (!all_digits(first) || !all_digits(last))
      fail("{} {}: expected 'all' or record numbers such as 0,2,5-7", option, spec);
    const int64_t begin = std::stoll(first), end = std::stoll(last);
    if (end < begin) fail("{} {}: the range {} is empty", option, spec, part);
    for (int64_t r = begin; r <= end; ++r) {
      if (!std::binary_search(numbers.begin(), numbers.end(), r))
        fail("{}: no record {} ({} {}; the store holds {})", store.dir(), r, option, spec, describe_records(store));
      wanted.insert(r);
    }
  }
  return {wanted.begin(), wanted.end()};
}

}  // namespace actcap
