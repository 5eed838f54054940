#include "core/utc_time.h"

#include <chrono>
#include <ctime>

#include <fmt/format.h>

namespace actcap {
namespace {

std::tm utc_now(int& millis) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  millis = int(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return utc;
}

std::string format_utc(const std::tm& t, const char* tail) {
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour,
                     t.tm_min, t.tm_sec, tail);
}

}  // namespace

std::string utc_timestamp() {
  int millis = 0;
  return format_utc(utc_now(millis), "Z");
}

std::string utc_timestamp_millis() {
  int millis = 0;
  const std::tm t = utc_now(millis);
  return format_utc(t, fmt::format(".{:03}Z", millis).c_str());
}

std::string utc_date_compact() {
  int millis = 0;
  const std::tm t = utc_now(millis);
  return fmt::format("{:04}{:02}{:02}", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday);
}

}  // namespace actcap
