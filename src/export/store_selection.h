#pragma once
// Which sites and records of a capture store an export (or `actcap stats`) covers.
#include <cstdint>
#include <string>
#include <vector>

#include "capture/store_reader.h"

namespace actcap {

// The store's sites matched by any of `globs` (fnmatch patterns; "all" = every site), in the store's forward
// order. Each element of `globs` may hold several patterns separated by commas. Throws actcap::Error naming the
// store for a pattern that matches no site, suggesting the nearest (capture/sites.h: match_site_globs).
std::vector<std::string> select_sites(const StoreReader& store, const std::vector<std::string>& globs);

// Records from "all" or a list such as "0,2,5-7", in increasing order without repeats. Throws actcap::Error for
// bad syntax (`option` names the flag) and for a record the store lacks, saying which records it holds.
std::vector<int64_t> select_records(const StoreReader& store, const std::string& spec, const std::string& option);

// One record number (`--record N`): a non-negative integer, else an actcap::Error naming `option`.
int64_t parse_record_number(const std::string& text, const std::string& option);

// "records 0-2" / "record 0" / "no records": what a store holds, for error messages.
std::string describe_records(const StoreReader& store);

}  // namespace actcap
