#pragma once
// Added tokens of tokenizer.json and how HF's AddedVocabulary finds them in text: leftmost-longest matching
// (aho-corasick LeftmostLongest), then single_word / lstrip / rstrip applied to each match.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace actcap::tokenizer {

struct AddedToken {
  int32_t id;
  std::string content;
  bool single_word, lstrip, rstrip, normalized, special;
};

struct TextSplit {
  size_t begin, end;
  const AddedToken* token;  // nullptr: ordinary text
};

class AddedTokenMatcher {
 public:
  // Each pattern is the text to find (the content, or its normalized form) and the token it stands for.
  void add(const std::string& pattern, const AddedToken* token);
  bool empty() const { return nodes_.size() == 1; }

  // Splits `text` into ordinary pieces and added tokens, covering it left to right (empty text: no splits).
  void split(std::string_view text, std::vector<TextSplit>& out) const;

 private:
  struct Node {
    const AddedToken* token = nullptr;  // a pattern ends here
  };
  int32_t child(int32_t node, unsigned char byte) const;
  std::vector<Node> nodes_{Node{}};
  std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> node
  bool first_byte_[256] = {};
};

}  // namespace actcap::tokenizer
