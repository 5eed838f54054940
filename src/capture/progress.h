#pragma once
// The pieces of a progress display: the line drawn for a state, and a smoothed rate whose ETA stays steady
// when work arrives in batch-sized jumps.
#include <cstdint>
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

// An exponential moving average of a rate (work per second) with time constant `tau`: the slow first batch and
// the jumps of batch-sized updates move it by a fraction 1 - exp(-dt / tau) each, so the ETA derived from it
// changes gradually.
class SmoothedRate {
 public:
  explicit SmoothedRate(double tau_seconds = 8.0) : tau_(tau_seconds) {}
  // `done`: the cumulative work at time `seconds` (both non-decreasing).
  void add(double seconds, double done);
  double rate() const { return rate_; }  // 0 until the first update after some time passed

 private:
  double tau_;
  double rate_ = 0, last_seconds_ = 0, last_done_ = 0;
  bool started_ = false;
};

// The ETA shown between updates: counts down by itself, and moves towards each new estimate over a few
// seconds instead of jumping to it.
class SteadyEta {
 public:
  void estimate(double seconds, double eta);  // a new estimate at time `seconds`
  double at(double seconds) const;             // the ETA to show at time `seconds`; < 0 when unknown

 private:
  double eta_ = -1, since_ = 0;
};

}  // namespace actcap
