#include "capture/recorder.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace actcap {
namespace {

bool is_pattern(const std::string& site) {
  static const std::string suffix = "attn.hook_pattern";
  return site.size() >= suffix.size() && site.compare(site.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void Recorder::on_activation(int sequence, const std::string& site, int64_t first_position, const TensorView& rows) {
  Tensor copy = Tensor::copy_of(rows);
  std::lock_guard lock(mutex_);
  auto& sites = sequences_[sequence];
  auto it = std::find_if(sites.begin(), sites.end(), [&](const SiteRows& s) { return s.site == site; });
  if (it == sites.end()) it = sites.insert(sites.end(), SiteRows{site, {}});
  it->chunks.push_back(Chunk{first_position, std::move(copy)});
}

std::vector<int64_t> Recorder::kept_positions(SiteSelection::Positions positions, int n_prompt, int n_total) {
  int64_t begin = 0, end = n_total;
  switch (positions) {
    case SiteSelection::Positions::All: break;
    case SiteSelection::Positions::Last: begin = std::max(0, n_total - 1); break;
    case SiteSelection::Positions::LastPrompt: begin = std::max(0, n_prompt - 1), end = n_prompt; break;
    case SiteSelection::Positions::Prompt: end = n_prompt; break;
    case SiteSelection::Positions::Generated: begin = n_prompt; break;
  }
  std::vector<int64_t> kept;
  for (int64_t p = begin; p < end; ++p) kept.push_back(p);
  return kept;
}

Recorder::Taken Recorder::take(int sequence, int n_prompt, int n_total) {
  std::vector<SiteRows> sites;
  {
    std::lock_guard lock(mutex_);
    auto it = sequences_.find(sequence);
    if (it != sequences_.end()) {
      sites = std::move(it->second);
      sequences_.erase(it);
    }
  }
  Taken taken;
  taken.positions = kept_positions(positions_, n_prompt, n_total);
  const int64_t kept = int64_t(taken.positions.size());
  for (SiteRows& s : sites) {
    // Where each position's row lives.
    std::vector<std::pair<const Chunk*, int64_t>> source(size_t(n_total), {nullptr, 0});
    for (const Chunk& c : s.chunks)
      for (int64_t r = 0; r < c.rows.dim(0); ++r)
        if (c.first_position + r < n_total) source[size_t(c.first_position + r)] = {&c, r};
    for (int64_t p : taken.positions)
      if (!source[size_t(p)].first) fail("internal error: site {} of sequence {} has no row for position {}", s.site, sequence, p);
    if (s.chunks.empty()) continue;
    const Tensor& first = s.chunks.front().rows;
    if (is_pattern(s.site)) {
      const int64_t H = first.dim(1);
      Tensor out({H, kept, int64_t(n_total)});
      for (int64_t k = 0; k < kept; ++k) {
        auto [chunk, r] = source[size_t(taken.positions[size_t(k)])];
        const int64_t keys = chunk->rows.dim(2);
        for (int64_t h = 0; h < H; ++h)
          std::memcpy(out.f32() + (h * kept + k) * n_total, chunk->rows.f32() + (r * H + h) * keys,
                      sizeof(float) * size_t(std::min<int64_t>(keys, n_total)));
      }
      taken.sites.emplace_back(s.site, std::move(out));
    } else {
      Shape shape = first.shape();
      const int64_t row = first.numel() / std::max<int64_t>(1, first.dim(0));
      shape[0] = kept;
      Tensor out(shape);
      for (int64_t k = 0; k < kept; ++k) {
        auto [chunk, r] = source[size_t(taken.positions[size_t(k)])];
        std::memcpy(out.f32() + k * row, chunk->rows.f32() + r * row, sizeof(float) * size_t(row));
      }
      taken.sites.emplace_back(s.site, std::move(out));
    }
  }
  return taken;
}

}  // namespace actcap
