#include "capture/reporter.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

#include "tokenizer/tokenizer.h"

namespace actcap {

namespace {

int terminal_width() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

// 1234567 -> "1,234,567".
std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string bytes_text(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = double(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[unit]);
}

std::string folder_name(const std::string& dir) {
  std::filesystem::path path(dir);
  if (path.filename().empty()) path = path.parent_path();
  return path.filename().string();
}

void write_stderr(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

std::string human_summary(const nlohmann::ordered_json& s) {
  const int64_t records = s["records"], this_run = s["records_this_run"];
  const double seconds = s["wall_seconds"];
  const int64_t tokens = s["tokens_this_run"];
  std::string out = fmt::format("actcap: captured {} record{}, {} token{} in {} ({} tok/s)", with_commas(this_run),
                                this_run == 1 ? "" : "s", with_commas(tokens), tokens == 1 ? "" : "s",
                                format_duration(seconds),
                                with_commas(int64_t(s["tokens_per_second"].get<double>() + 0.5)));
  if (records != this_run) out += fmt::format(", {} in the store with the earlier run's", with_commas(records));
  out += "\n";
  const int64_t shards = s["shards"];
  out += fmt::format("  store: {} ({} {}, {} written, {} site{}, {}, {})\n", s["out"].get<std::string>(), shards,
                     shards == 1 ? "shard" : "shards", bytes_text(s["bytes_written"].get<uint64_t>()),
                     s["sites"].size(), s["sites"].size() == 1 ? "" : "s", s["dtype"].get<std::string>(),
                     s["layout"].get<std::string>());
  if (s.contains("accuracy")) {
    const auto& a = s["accuracy"];
    const int64_t graded = a["graded"];
    auto count = [&](const char* key) { return int64_t(a[key].get<double>() * double(graded) + 0.5); };
    out += fmt::format("  accuracy: {}/{} exact match ({:.1f}%), {}/{} contain the answer ({:.1f}%)\n",
                       count("exact_match"), graded, 100 * a["exact_match"].get<double>(), count("contains"), graded,
                       100 * a["contains"].get<double>());
  }
  return out;
}

TerminalReporter::TerminalReporter(bool quiet, bool verbose, bool terminal)
    : quiet_(quiet), verbose_(verbose && !quiet), terminal_(terminal && !quiet) {
  if (terminal_) timer_ = std::thread([this] { timer_loop(); });
}

TerminalReporter::~TerminalReporter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    erase_locked();
    showing_ = Showing::Nothing;
  }
  wake_.notify_all();
  if (timer_.joinable()) timer_.join();
}

double TerminalReporter::seconds_since(std::chrono::steady_clock::time_point start) const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void TerminalReporter::timer_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    draw_locked();
    wake_.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void TerminalReporter::draw_locked() {
  if (!terminal_ || showing_ == Showing::Nothing) return;
  const int width = terminal_width() - 1;
  std::string line;
  if (showing_ == Showing::Stage) {
    line = fmt::format("actcap: {} ({:.1f} s)", stage_, seconds_since(stage_start_));
  } else {
    const double now = seconds_since(capture_start_);
    ProgressState state;
    state.records_done = records_done_;
    state.records_total = start_.records_total;
    // Records stored by an earlier run (resume) count as done.
    state.fraction = (double(start_.records_done) + fraction_locked() * double(start_.records_total - start_.records_done)) /
                     double(std::max<int64_t>(1, start_.records_total));
    state.tokens_per_second = rate_.rate(now);
    // A new estimate once a second, not per record: the records of a batch arrive together.
    if (now - last_estimate_ >= 1.0 && planned_done_ > 0) {
      eta_.estimate(now, raw_eta_locked(now));
      last_estimate_ = now;
    }
    state.eta_seconds = eta_.at(now);
    state.elapsed_seconds = now;
    line = render_progress(state, width);
  }
  if (int(line.size()) > width) line.resize(size_t(std::max(0, width)));
  write_stderr("\r\033[K" + line);
  drawn_ = true;
}

double TerminalReporter::fraction_locked() const {
  if (start_.planned_tokens <= 0) return 0;
  double done = double(planned_done_);
  if (batch_records_ > 0 && start_.max_new_tokens > 0)
    done += 0.5 * double(batch_planned_) *
            std::min(1.0, double(batch_generated_) / double(batch_records_ * start_.max_new_tokens));
  return std::min(1.0, done / double(start_.planned_tokens));
}

double TerminalReporter::raw_eta_locked(double now) const {
  // Counted in planned tokens (prompt + max_new_tokens), the work measure known for every record up front.
  const double planned_rate = rate_.rate(now) * double(planned_done_) / double(std::max<int64_t>(1, tokens_done_));
  return planned_rate > 0 ? double(start_.planned_tokens - planned_done_) / planned_rate : -1;
}

void TerminalReporter::erase_locked() {
  if (!drawn_) return;
  write_stderr("\r\033[K");
  drawn_ = false;
}

void TerminalReporter::print_locked(const std::string& text) {
  erase_locked();
  write_stderr(text);
  draw_locked();
}

void TerminalReporter::stage(const std::string& model, const std::string& what) {
  // In a log the stages would only precede an error, which should stand alone; "capturing" says it all began.
  if (!terminal_) return;
  std::lock_guard lock(mutex_);
  stage_ = model.empty() ? what : fmt::format("{}: {}", folder_name(model), what);
  stage_start_ = std::chrono::steady_clock::now();
  showing_ = Showing::Stage;
  draw_locked();
}

void TerminalReporter::capture_started(const Start& start) {
  if (quiet_) return;
  std::lock_guard lock(mutex_);
  start_ = start;
  records_done_ = start.records_done;
  tokens_done_ = planned_done_ = 0;
  rate_ = WindowedRate();
  eta_ = SteadyEta();
  next_quarter_ = 1;
  last_estimate_ = -1;
  batch_records_ = batch_planned_ = batch_generated_ = 0;
  capture_start_ = std::chrono::steady_clock::now();
  single_text_ = start.records_total == 1 && start.max_new_tokens > 0 && start.tokenizer != nullptr;
  erase_locked();
  if (!terminal_)
    write_stderr(fmt::format("actcap: capturing {} record{} into {}\n", start.records_total - start.records_done,
                             start.records_total - start.records_done == 1 ? "" : "s", start.out));
  // A single prompt's text is streamed where the bar would be.
  showing_ = terminal_ && !single_text_ ? Showing::Bar : Showing::Nothing;
  draw_locked();
}

void TerminalReporter::generation_started(int64_t, const std::vector<int32_t>& prompt) {
  if (quiet_) return;
  std::lock_guard lock(mutex_);
  ++batch_records_;
  batch_planned_ += int64_t(prompt.size()) + start_.max_new_tokens;
  if (!single_text_) return;
  decoder_ = std::make_unique<DecodeStream>(*start_.tokenizer, false);
  text_.clear();
  for (int32_t id : prompt) text_ += decoder_->step(id);
  if (terminal_) {
    write_stderr(text_);
    text_.clear();
  }
}

void TerminalReporter::token(int64_t, int32_t token) {
  if (quiet_) return;
  std::lock_guard lock(mutex_);
  ++batch_generated_;
  if (!single_text_ || !decoder_) return;
  std::string piece = decoder_->step(token);
  if (terminal_) write_stderr(piece);
  else text_ += piece;
}

void TerminalReporter::record_stored(const Stored& record) {
  if (quiet_) return;
  std::lock_guard lock(mutex_);
  ++records_done_;
  tokens_done_ += int64_t(record.token_ids->size());
  planned_done_ += record.planned_tokens;
  batch_planned_ -= record.planned_tokens;
  if (--batch_records_ <= 0) batch_records_ = batch_planned_ = batch_generated_ = 0;
  const double now = seconds_since(capture_start_);
  rate_.add(now, double(tokens_done_));

  if (single_text_) {
    write_stderr(text_ + "\n");
    text_.clear();
    decoder_.reset();
  } else if (verbose_ && start_.tokenizer) {
    print_locked(fmt::format("[{}] {}\n", record.id, start_.tokenizer->decode(*record.token_ids, false)));
  }
  if (!terminal_ && start_.records_total > 1) {
    const double fraction = start_.planned_tokens > 0 ? double(planned_done_) / double(start_.planned_tokens) : 1;
    if (next_quarter_ <= 3 && fraction >= 0.25 * next_quarter_) {
      while (next_quarter_ <= 3 && fraction >= 0.25 * next_quarter_) ++next_quarter_;
      double eta = raw_eta_locked(now);
      write_stderr(fmt::format("actcap: {}% ({}/{} records, {} tok/s{})\n", int(fraction * 100), records_done_,
                               start_.records_total, with_commas(int64_t(rate_.rate(now) + 0.5)),
                               eta >= 0 ? ", ETA " + format_duration(eta) : ""));
    }
  }
}

void TerminalReporter::model_finished(const nlohmann::ordered_json& summary) {
  if (quiet_) return;
  std::lock_guard lock(mutex_);
  erase_locked();
  showing_ = Showing::Nothing;
  write_stderr(human_summary(summary));
}

}  // namespace actcap
