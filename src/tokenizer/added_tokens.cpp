#include "tokenizer/added_tokens.h"

#include "tokenizer/unicode.h"

namespace actcap::tokenizer {
namespace {

// Rust's `chars().last().is_alphanumeric() || == '_'` on text[..at].
bool word_char_before(std::string_view text, size_t at) {
  if (at == 0) return false;
  size_t begin = at - 1;
  while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
  size_t i = begin;
  return is_word_char(next_code_point(text, i));
}

bool word_char_after(std::string_view text, size_t at) {
  if (at >= text.size()) return false;
  return is_word_char(next_code_point(text, at));
}

// Start of the whitespace run that ends at `at`.
size_t whitespace_start_before(std::string_view text, size_t at) {
  while (at > 0) {
    size_t begin = at - 1;
    while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
    size_t i = begin;
    if (!is_white_space(next_code_point(text, i))) break;
    at = begin;
  }
  return at;
}

size_t whitespace_end_after(std::string_view text, size_t at) {
  while (at < text.size()) {
    size_t i = at;
    if (!is_white_space(next_code_point(text, i))) break;
    at = i;
  }
  return at;
}

}  // namespace

int32_t AddedTokenMatcher::child(int32_t node, unsigned char byte) const {
  auto it = edges_.find((static_cast<uint64_t>(node) << 8) | byte);
  return it == edges_.end() ? -1 : it->second;
}

void AddedTokenMatcher::add(const std::string& pattern, const AddedToken* token) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (char c : pattern) {
    unsigned char byte = static_cast<unsigned char>(c);
    int32_t next = child(node, byte);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_.push_back({});
      edges_.emplace((static_cast<uint64_t>(node) << 8) | byte, next);
    }
    node = next;
  }
  if (!nodes_[static_cast<size_t>(node)].token) nodes_[static_cast<size_t>(node)].token = token;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<TextSplit>& out) const {
  out.clear();
  size_t start_offset = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    const AddedToken* found = nullptr;
    size_t found_end = 0;
    int32_t node = 0;
    for (size_t k = i; k < text.size(); ++k) {
      node = child(node, static_cast<unsigned char>(text[k]));
      if (node < 0) break;
      if (const AddedToken* t = nodes_[static_cast<size_t>(node)].token) {
        found = t;
        found_end = k + 1;
      }
    }
    if (!found) {
      ++i;
      continue;
    }
    size_t start = i, stop = found_end;
    i = found_end;
    if (found->single_word && (word_char_before(text, start) || word_char_after(text, stop))) continue;
    if (found->lstrip) start = std::max(whitespace_start_before(text, start), start_offset);
    if (found->rstrip) stop = whitespace_end_after(text, stop);
    if (start > start_offset) out.push_back({start_offset, start, nullptr});
    out.push_back({start, stop, found});
    start_offset = stop;
    // rstrip may swallow text past the match: the scan goes on from there (the matches HF would find inside
    // that whitespace could only be whitespace tokens).
    i = std::max(i, stop);
  }
  if (start_offset != text.size()) out.push_back({start_offset, text.size(), nullptr});
}

}  // namespace actcap::tokenizer
