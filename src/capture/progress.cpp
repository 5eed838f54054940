#include "capture/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace actcap {

namespace {

std::string duration(double seconds) {
  auto s = int64_t(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

int terminal_width() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

}  // namespace

std::string render_progress(const ProgressState& state, int width) {
  double rate = state.elapsed_seconds > 0 ? double(state.tokens_done) / state.elapsed_seconds : 0.0;
  std::string counts = state.records_total > 0
                           ? fmt::format("{}/{} records", state.records_done, state.records_total)
                           : fmt::format("{} records", state.records_done);
  std::string text = fmt::format(" {}  {:.0f} tok/s", counts, rate);
  if (state.records_total > 0 && state.records_done > 0 && state.records_done < state.records_total) {
    double remaining = state.elapsed_seconds * double(state.records_total - state.records_done) /
                       double(state.records_done);
    text += "  ETA " + duration(remaining);
  } else if (state.records_total > 0 && state.records_done >= state.records_total) {
    text += "  done in " + duration(state.elapsed_seconds);
  }
  int bar = std::min(30, width - int(text.size()) - 2);
  if (state.records_total <= 0 || bar < 5) return text.substr(0, size_t(std::max(0, width)));
  int filled = int(double(bar) * double(std::min(state.records_done, state.records_total)) /
                   double(state.records_total));
  return "[" + std::string(size_t(filled), '#') + std::string(size_t(bar - filled), ' ') + "]" + text;
}

ProgressBar::ProgressBar(bool enabled, int64_t records_total, std::string label)
    : active_(enabled && isatty(STDERR_FILENO)), label_(std::move(label)) {
  state_.records_total = records_total;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t records_done, int64_t tokens_done) {
  state_.records_done = records_done;
  state_.tokens_done = tokens_done;
  if (!active_) return;
  auto now = std::chrono::steady_clock::now();
  bool last = state_.records_total > 0 && records_done >= state_.records_total;
  if (drawn_ && !last && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  redraw();
}

void ProgressBar::redraw() {
  if (!active_) return;
  state_.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string prefix = label_.empty() ? "" : label_ + " ";
  int width = terminal_width() - 1;
  std::string line = prefix + render_progress(state_, width - int(prefix.size()));
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!active_ || !drawn_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

void ProgressBar::finish() {
  clear();
  active_ = false;
}

}  // namespace actcap
