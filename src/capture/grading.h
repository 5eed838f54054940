#pragma once
// Grading generated answers against reference answers (benchmark questions), with SQuAD's normalisation:
// lowercase, drop punctuation, drop the articles a/an/the, collapse whitespace.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace actcap {

// SQuAD's normalize_answer, Unicode-aware: lowercases any script and drops Unicode punctuation as well as
// ASCII's string.punctuation.
std::string normalize_answer(std::string_view text);

struct Grade {
  bool exact_match = false;  // normalised generation == a normalised answer
  bool contains = false;     // a normalised answer occurs in the normalised generation, on word boundaries
  nlohmann::json to_json() const { return {{"exact_match", exact_match}, {"contains", contains}}; }
};

// `answer` is a string or a list of acceptable strings (any one counts).
Grade grade_answer(std::string_view generated, const nlohmann::json& answer);

class Accuracy {
 public:
  void add(const Grade& grade);
  int64_t graded() const { return graded_; }
  // {"graded", "exact_match", "contains"} with fractions in [0, 1].
  nlohmann::json summary() const;

 private:
  int64_t graded_ = 0, exact_ = 0, contains_ = 0;
};

}  // namespace actcap
