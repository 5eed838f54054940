#pragma once
// A one-line progress bar on stderr (records, tokens/s, ETA), drawn only when stderr is a terminal and the
// user did not ask for --quiet, so logs and pipes never receive carriage-return noise.
#include <chrono>
#include <cstdint>
#include <string>

namespace actcap {

struct ProgressState {
  int64_t records_done = 0;
  int64_t records_total = 0;  // 0 when unknown
  int64_t tokens_done = 0;
  double elapsed_seconds = 0;
};

// The line drawn for `state`, at most `width` columns wide: "[####    ] 12/100 records  3,456 tok/s  ETA 0:42".
std::string render_progress(const ProgressState& state, int width);

class ProgressBar {
 public:
  // Draws nothing unless `enabled` and stderr is a terminal.
  ProgressBar(bool enabled, int64_t records_total, std::string label = "");
  ~ProgressBar();
  bool active() const { return active_; }

  void update(int64_t records_done, int64_t tokens_done);  // redraws at most ten times a second
  void clear();   // erases the line, before other text is printed on stderr
  void redraw();  // draws the line again after such text
  void finish();  // erases the line for good

 private:
  bool active_;
  std::string label_;
  ProgressState state_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

}  // namespace actcap
