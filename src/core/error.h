#pragma once
// Every user-facing failure is an actcap::Error whose message is one line naming the file (or input) and the
// problem; the CLI prints it and exits non-zero.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace actcap {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace actcap
