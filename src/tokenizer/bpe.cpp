#include "tokenizer/bpe.h"

#include <fmt/format.h>

#include <queue>

#include "core/error.h"
#include "tokenizer/token_id.h"
#include "tokenizer/unicode.h"

namespace actcap::tokenizer {
namespace {

constexpr size_t kCacheCapacity = 100000;
constexpr size_t kCacheMaxWordBytes = 256;

std::string optional_string(const nlohmann::json& spec, const char* key) {
  auto it = spec.find(key);
  return it == spec.end() || it->is_null() ? std::string() : it->get<std::string>();
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model) {
  auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null() && dropout->get<double>() != 0.0)
    fail("tokenizer.json: BPE dropout is not supported (non-deterministic)");

  const auto& vocab = model.at("vocab");
  if (!vocab.is_object()) fail("tokenizer.json: the BPE vocab must be an object of token: id");
  vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    vocab_.emplace(it.key(), parse_token_id(it.value(), fmt::format("vocab token '{}'", it.key())));
  vocab_r_.reserve(vocab_.size());
  for (const auto& [token, id] : vocab_) vocab_r_.emplace(id, &token);

  continuing_subword_prefix_ = optional_string(model, "continuing_subword_prefix");
  end_of_word_suffix_ = optional_string(model, "end_of_word_suffix");
  byte_fallback_ = model.value("byte_fallback", false);
  fuse_unk_ = model.value("fuse_unk", false);
  ignore_merges_ = model.value("ignore_merges", false);
  std::string unk = optional_string(model, "unk_token");
  if (!unk.empty()) {
    auto id = token_to_id(unk);
    if (!id) fail("tokenizer.json: BPE unk_token '{}' is not in the vocab", unk);
    unk_id_ = *id;
  }
  for (int b = 0; b < 256; ++b) {
    auto id = token_to_id(fmt::format("<0x{:02X}>", b));
    byte_ids_[b] = id ? *id : -1;
  }

  const auto& merges = model.at("merges");
  merges_.reserve(merges.size());
  int32_t rank = 0;
  for (const auto& merge : merges) {
    std::string left, right;
    if (merge.is_string()) {
      const std::string& line = merge.get_ref<const std::string&>();
      if (line.rfind("#version", 0) == 0) continue;
      size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        fail("tokenizer.json: BPE merge '{}' is not two tokens separated by one space", line);
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      fail("tokenizer.json: BPE merge #{} is neither \"a b\" nor [a, b]", rank);
    }
    auto a = token_to_id(left), b = token_to_id(right);
    if (!a || !b) fail("tokenizer.json: BPE merge '{} {}' uses a token missing from the vocab", left, right);
    std::string merged = left + right.substr(std::min(continuing_subword_prefix_.size(), right.size()));
    auto m = token_to_id(merged);
    if (!m) fail("tokenizer.json: BPE merge '{} {}' gives '{}', which is not in the vocab", left, right, merged);
    merges_[(static_cast<uint64_t>(static_cast<uint32_t>(*a)) << 32) | static_cast<uint32_t>(*b)] = {rank, *m};
    ++rank;
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  auto it = vocab_r_.find(id);
  return it == vocab_r_.end() ? nullptr : it->second;
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() < kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + first, out.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id, prev, next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto add = [&](int32_t id) {
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  };

  std::optional<int32_t> pending_unk;  // as HF: an unknown run waits until the next known character
  std::string key;
  size_t i = 0;
  while (i < word.size()) {
    size_t begin = i;
    next_code_point(word, i);
    std::string_view ch = word.substr(begin, i - begin);
    std::optional<int32_t> id;
    if (continuing_subword_prefix_.empty() && end_of_word_suffix_.empty()) {
      id = token_to_id(ch);
    } else {
      key.clear();
      if (begin != 0) key += continuing_subword_prefix_;
      key += ch;
      if (i == word.size()) key += end_of_word_suffix_;
      id = token_to_id(key);
      ch = key;
    }
    if (id) {
      if (pending_unk) {
        add(*pending_unk);
        pending_unk.reset();
      }
      add(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : ch) all &= byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : ch) add(byte_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk && !fuse_unk_) add(*pending_unk);
      pending_unk = unk_id_;
    }
  }
  if (pending_unk) add(*pending_unk);
  if (symbols.empty()) return;
  symbols.back().next = -1;

  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator<(const Candidate& o) const {  // max-heap: lowest rank, then leftmost, on top
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const auto lookup = [&](int32_t a, int32_t b) -> const std::pair<int32_t, int32_t>* {
    auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  std::vector<Candidate> initial;
  initial.reserve(symbols.size());
  for (size_t k = 0; k + 1 < symbols.size(); ++k)
    if (auto m = lookup(symbols[k].id, symbols[k + 1].id))
      initial.push_back({m->first, static_cast<int32_t>(k), m->second});
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(initial));

  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& current = symbols[static_cast<size_t>(top.pos)];
    if (!current.alive || current.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(current.next)];
    auto m = lookup(current.id, right.id);
    if (!m || m->second != top.new_id) continue;  // stale entry
    current.id = top.new_id;
    right.alive = false;
    current.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    if (current.prev >= 0)
      if (auto p = lookup(symbols[static_cast<size_t>(current.prev)].id, current.id))
        queue.push({p->first, current.prev, p->second});
    if (current.next >= 0)
      if (auto n = lookup(current.id, symbols[static_cast<size_t>(current.next)].id))
        queue.push({n->first, top.pos, n->second});
  }
  for (const auto& s : symbols)
    if (s.alive) out.push_back(s.id);
}

}  // namespace actcap::tokenizer
