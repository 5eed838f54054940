#include "capture/progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace actcap {

std::string format_duration(double seconds) {
  auto s = int64_t(std::llround(std::max(0.0, seconds)));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string render_progress(const ProgressState& state, int width) {
  std::string counts = state.records_total > 0
                           ? fmt::format("{}/{} records", state.records_done, state.records_total)
                           : fmt::format("{} records", state.records_done);
  std::string text = " " + counts;
  if (state.tokens_per_second > 0) text += fmt::format("  {:.0f} tok/s", state.tokens_per_second);
  text += "  " + format_duration(state.elapsed_seconds) + " elapsed";
  if (state.eta_seconds >= 0) text += "  ETA " + format_duration(state.eta_seconds);
  // A fixed width while the terminal allows it, so the bar does not shift as the text beside it changes.
  int bar = std::min(20, width - int(text.size()) - 2);
  if (state.records_total <= 0 || bar < 5) return text.substr(0, size_t(std::max(0, width)));
  int filled = int(double(bar) * std::clamp(state.fraction, 0.0, 1.0));
  return "[" + std::string(size_t(filled), '#') + std::string(size_t(bar - filled), ' ') + "]" + text;
}

void WindowedRate::add(double seconds, double done) {
  samples_.emplace_back(seconds, done);
  // Keeps one sample at or before the window's start, the base the rate is measured from.
  while (samples_.size() > 2 && samples_[1].first <= seconds - window_) samples_.pop_front();
}

double WindowedRate::rate(double now) const {
  // The base: the newest sample at or before now - window (else the oldest kept).
  auto base = samples_.front();
  for (const auto& sample : samples_)
    if (sample.first <= now - window_) base = sample;
  const double seconds = now - base.first;
  return seconds > 0 ? (samples_.back().second - base.second) / seconds : 0;
}

void SteadyEta::estimate(double seconds, double eta) {
  if (eta < 0) return;
  // A third of the way towards a new estimate within a factor of two of the shown one: batch-to-batch noise
  // averages out, a real change shows within a few updates. Further off (the first estimates, made from the
  // first few records; a change of pace), the shown value was wrong: replace it.
  const double shown = at(seconds);
  eta_ = shown <= 0 || eta > 2 * shown || eta < shown / 2 ? eta : shown + (eta - shown) / 3;
  since_ = seconds;
}

double SteadyEta::at(double seconds) const {
  if (eta_ < 0) return -1;
  return std::max(0.0, eta_ - (seconds - since_));
}

}  // namespace actcap
