#include "capture/grading.h"

#include <utf8proc.h>

#include <vector>

#include "tokenizer/unicode.h"

namespace actcap {

namespace {

bool is_punctuation(utf8proc_int32_t c) {
  // string.punctuation holds ASCII symbols too ($+<=>^`|~), which Unicode files under S*, not P*.
  if (c < 128) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF: case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

bool is_space(utf8proc_int32_t c) {
  if (c == ' ' || (c >= 9 && c <= 13)) return true;
  auto category = utf8proc_category(c);
  return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL || category == UTF8PROC_CATEGORY_ZP;
}

}  // namespace

std::string normalize_answer(std::string_view text) {
  std::vector<std::string> words(1);
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t left = utf8proc_ssize_t(text.size());
  while (left > 0) {
    utf8proc_int32_t c;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
    if (n <= 0) {  // invalid byte: skip it (generated text is decoded already; this is only a safety net)
      n = 1;
      c = -1;
    }
    p += n;
    left -= n;
    if (c < 0 || is_punctuation(c)) continue;
    if (is_space(c)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    tokenizer::append_utf8(words.back(), char32_t(utf8proc_tolower(c)));
  }
  std::string out;
  for (const auto& word : words) {
    if (word.empty() || word == "a" || word == "an" || word == "the") continue;
    if (!out.empty()) out += ' ';
    out += word;
  }
  return out;
}

Grade grade_answer(std::string_view generated, const nlohmann::json& answer) {
  std::string prediction = " " + normalize_answer(generated) + " ";
  std::vector<std::string> answers;
  if (answer.is_string()) answers.push_back(answer.get<std::string>());
  else
    for (const auto& a : answer) answers.push_back(a.get<std::string>());
  Grade grade;
  for (const auto& a : answers) {
    std::string target = normalize_answer(a);
    if (" " + target + " " == prediction) grade.exact_match = true;
    if (!target.empty() && prediction.find(" " + target + " ") != std::string::npos) grade.contains = true;
  }
  return grade;
}

void Accuracy::add(const Grade& grade) {
  ++graded_;
  exact_ += grade.exact_match;
  contains_ += grade.contains;
}

nlohmann::json Accuracy::summary() const {
  auto fraction = [&](int64_t n) { return graded_ ? double(n) / double(graded_) : 0.0; };
  return {{"graded", graded_}, {"exact_match", fraction(exact_)}, {"contains", fraction(contains_)}};
}

}  // namespace actcap
