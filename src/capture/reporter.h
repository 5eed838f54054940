#pragma once
// What a capture shows on stderr. On a terminal: the current stage at once ("loading the model"), then a
// progress bar redrawn ten times a second by a timer (so it moves smoothly and its elapsed time ticks even when a
// batch takes seconds), with a smoothed rate and a steady ETA; at the end a short summary. Elsewhere (logs,
// pipes): a few plain lines: the start, 25/50/75% and the summary. The text a single prompt generates is shown
// (streamed on a terminal); with several prompts, generations are shown only when `verbose`. Nothing at all
// when `quiet`.
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "capture/capture_job.h"
#include "capture/progress.h"

namespace actcap {

class DecodeStream;

// The human summary of one model's capture (a summary.json object): a few lines, each ending in '\n'.
std::string human_summary(const nlohmann::ordered_json& summary);

class TerminalReporter : public CaptureObserver {
 public:
  // `terminal`: whether stderr is a terminal (the bar and streamed text need one).
  TerminalReporter(bool quiet, bool verbose, bool terminal);
  ~TerminalReporter() override;  // stops the timer and erases the bar (also when the capture failed)
  TerminalReporter(const TerminalReporter&) = delete;
  TerminalReporter& operator=(const TerminalReporter&) = delete;

  void stage(const std::string& model, const std::string& what) override;
  void capture_started(const Start& start) override;
  void generation_started(int64_t record, const std::vector<int32_t>& prompt) override;
  void token(int64_t record, int32_t token) override;
  void record_stored(const Stored& record) override;
  void model_finished(const nlohmann::ordered_json& summary) override;

  // How far the bar is: this run's planned work done, the batch being generated included.
  double progress() {
    std::lock_guard lock(mutex_);
    return fraction_locked();
  }

 private:
  double seconds_since(std::chrono::steady_clock::time_point start) const;
  double fraction_locked() const;  // of this run's planned work, in-flight batch included
  double raw_eta_locked(double now) const;  // seconds left at the current rate; < 0 when unknown
  void draw_locked();   // the current line (stage or bar), replacing what is there
  void erase_locked();  // erases the current line before other text is written
  void print_locked(const std::string& text);  // text on its own lines, the bar redrawn below it
  void timer_loop();

  const bool quiet_, verbose_, terminal_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread timer_;

  enum class Showing { Nothing, Stage, Bar } showing_ = Showing::Nothing;
  bool drawn_ = false;
  std::string stage_;
  std::chrono::steady_clock::time_point stage_start_, capture_start_;

  Start start_;
  int64_t records_done_ = 0, tokens_done_ = 0, planned_done_ = 0;
  WindowedRate rate_;
  SteadyEta eta_;
  double last_estimate_ = -1;
  int next_quarter_ = 1;  // non-terminal progress lines at 25, 50, 75%
  // The batch being generated: the bar moves with its generated tokens, generation counted as half its work
  // (prefill and capture the rest), so that it does not stand still for a whole batch.
  int64_t batch_records_ = 0, batch_planned_ = 0, batch_generated_ = 0;

  bool single_text_ = false;  // one record that generates: its text is shown
  std::unique_ptr<DecodeStream> decoder_;
  std::string text_;          // the single record's text, when it is not streamed
};

}  // namespace actcap
