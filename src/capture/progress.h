#pragma once
// The pieces of a progress display: the line drawn for a state, and a rate and ETA that stay steady when work
// arrives in batch-sized jumps.
#include <cstdint>
#include <deque>
#include <utility>
#include <string>

namespace actcap {

struct ProgressState {
  int64_t records_done = 0;
  int64_t records_total = 0;     // 0 when unknown
  double fraction = 0;           // of the planned work done, in [0, 1]
  double tokens_per_second = 0;  // smoothed
  double eta_seconds = -1;       // < 0 when unknown
  double elapsed_seconds = 0;
};

// The line drawn for `state`, at most `width` columns wide:
// "[#######        ] 25/100 records  500 tok/s  0:10 elapsed  ETA 0:30".
std::string render_progress(const ProgressState& state, int width);

// "0:42", "1:02:05".
std::string format_duration(double seconds);

// The rate of work over the last `window` seconds of wall time (over the whole run until it is that long),
// evaluated at the moment it is shown: records arrive a batch at a time, so a rate measured between arrivals
// would jump between "a batch in no time" and "nothing for seconds"; over a window of several batches it is
// steady, and it still follows a real change within the window.
class WindowedRate {
 public:
  explicit WindowedRate(double window_seconds = 20.0) : window_(window_seconds) {}
  void add(double seconds, double done);  // cumulative work at time `seconds` (both non-decreasing)
  double rate(double now) const;          // work per second; 0 before any work

 private:
  double window_;
  std::deque<std::pair<double, double>> samples_ = {{0.0, 0.0}};  // (seconds, done), oldest first
};

// The ETA shown between updates: counts down by itself, and moves towards each new estimate over a few
// seconds instead of jumping to it (unless it is off by more than a factor of two).
class SteadyEta {
 public:
  void estimate(double seconds, double eta);  // a new estimate at time `seconds`
  double at(double seconds) const;             // the ETA to show at time `seconds`; < 0 when unknown

 private:
  double eta_ = -1, since_ = 0;
};

}  // namespace actcap
