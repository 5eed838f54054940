#pragma once
// "Did you mean ...?" for misspelled names: the candidate nearest in edit distance, when near enough to be a typo.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace actcap {

// Levenshtein distance (insertions, deletions, substitutions), plus adjacent transpositions at cost 1.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to `typed`, if it is within a third of its length (at least 2 edits allowed); nullopt
// when nothing is that close, so that unrelated names are never suggested.
std::optional<std::string> nearest_name(std::string_view typed, const std::vector<std::string>& candidates);

}  // namespace actcap
