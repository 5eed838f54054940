#include "tokenizer/unigram.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace actcap::tokenizer {
namespace {

constexpr double kUnkPenalty = 10.0;  // HF's K_UNK_PENALTY

uint64_t edge(int32_t node, char byte) {
  return (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(byte);
}

}  // namespace

UnigramModel::UnigramModel(const nlohmann::json& model) {
  const auto& vocab = model.at("vocab");
  if (!vocab.is_array() || vocab.empty())
    fail("tokenizer.json: the Unigram vocab must be a non-empty array of [piece, score]");
  pieces_.reserve(vocab.size());
  scores_.reserve(vocab.size());
  min_score_ = std::numeric_limits<double>::infinity();
  for (const auto& entry : vocab) {
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number())
      fail("tokenizer.json: Unigram vocab entry #{} is not [piece, score]", pieces_.size());
    pieces_.push_back(entry[0].get<std::string>());
    scores_.push_back(entry[1].get<double>());
    min_score_ = std::min(min_score_, scores_.back());
  }
  if (pieces_.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    fail("tokenizer.json: the Unigram vocab has too many pieces");
  ids_.reserve(pieces_.size());
  for (size_t id = 0; id < pieces_.size(); ++id) ids_[pieces_[id]] = static_cast<int32_t>(id);  // as HF: last wins

  if (auto it = model.find("unk_id"); it != model.end() && !it->is_null()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() >= pieces_.size())
      fail("tokenizer.json: Unigram unk_id {} is not an index of the vocab ({} pieces)", it->dump(), pieces_.size());
    unk_id_ = it->get<int32_t>();
  }
  byte_fallback_ = model.value("byte_fallback", false);

  node_piece_.push_back(-1);  // the root; an empty piece never matches
  for (const auto& [piece, id] : ids_) {
    int32_t node = 0;
    for (char byte : piece) {
      auto [it, added] = children_.try_emplace(edge(node, byte), static_cast<int32_t>(node_piece_.size()));
      if (added) node_piece_.push_back(-1);
      node = it->second;
    }
    if (node != 0) node_piece_[static_cast<size_t>(node)] = id;
  }
}

std::optional<int32_t> UnigramModel::token_to_id(std::string_view token) const {
  auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

const std::string* UnigramModel::id_to_token(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < pieces_.size() ? &pieces_[static_cast<size_t>(id)] : nullptr;
}

void UnigramModel::segment(std::string_view text, std::vector<std::string_view>& pieces) const {
  struct Best {
    double score = 0;
    int64_t starts_at = -1;  // -1: no path ends here yet
    int32_t id = 0;
  };
  std::vector<Best> best(text.size() + 1);
  const double unk_score = min_score_ - kUnkPenalty;
  for (size_t start = 0; start < text.size();) {
    const double here = best[start].score;
    const size_t char_length = utf8_length(static_cast<unsigned char>(text[start]));
    bool covered = false;  // a piece is exactly this character
    int32_t node = 0;
    for (size_t end = start; end < text.size();) {
      auto child = children_.find(edge(node, text[end]));
      if (child == children_.end()) break;
      node = child->second;
      ++end;
      const int32_t id = node_piece_[static_cast<size_t>(node)];
      if (id < 0) continue;
      Best& target = best[end];
      const double candidate = scores_[static_cast<size_t>(id)] + here;
      if (target.starts_at < 0 || candidate > target.score) target = {candidate, static_cast<int64_t>(start), id};
      covered |= end - start == char_length;
    }
    if (!covered) {
      Best& target = best[start + char_length];
      const double candidate = unk_score + here;
      if (target.starts_at < 0 || candidate > target.score) {
        if (!unk_id_)
          fail("tokenizer: the Unigram vocab has no piece for '{}' and no unk_id", text.substr(start, char_length));
        target = {candidate, static_cast<int64_t>(start), *unk_id_};
      }
    }
    start += char_length;
  }
  // Back from the end; unk pieces in a row fuse into one.
  pieces.clear();
  size_t fused_begin = std::string_view::npos, fused_end = 0;
  for (size_t end = text.size(); end > 0;) {
    const Best& node = best[end];
    const auto start = static_cast<size_t>(node.starts_at);
    if (unk_id_ && node.id == *unk_id_) {
      if (fused_begin == std::string_view::npos) fused_end = end;
      fused_begin = start;
    } else {
      if (fused_begin != std::string_view::npos) pieces.push_back(text.substr(fused_begin, fused_end - fused_begin));
      fused_begin = std::string_view::npos;
      pieces.push_back(text.substr(start, end - start));
    }
    end = start;
  }
  if (fused_begin != std::string_view::npos) pieces.push_back(text.substr(fused_begin, fused_end - fused_begin));
  std::reverse(pieces.begin(), pieces.end());
}

void UnigramModel::tokenize(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::string_view> pieces;
  segment(text, pieces);
  for (std::string_view piece : pieces) {
    if (auto id = token_to_id(piece)) {
      out.push_back(*id);
      continue;
    }
    if (byte_fallback_) {
      std::vector<int32_t> bytes;
      for (char byte : piece)
        if (auto id = token_to_id(fmt::format("<0x{:02X}>", static_cast<unsigned char>(byte)))) bytes.push_back(*id);
      if (bytes.size() == piece.size()) {
        out.insert(out.end(), bytes.begin(), bytes.end());
        continue;
      }
    }
    if (!unk_id_) fail("tokenizer: the Unigram vocab has no piece for '{}' and no unk_id", piece);
    out.push_back(*unk_id_);
  }
}

}  // namespace actcap::tokenizer
