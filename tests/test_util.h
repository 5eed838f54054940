#pragma once
// Helpers shared by tests in several folders.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/error.h"

namespace actcap::test {

// An empty folder under the system temp folder, unique to this process; the test removes it.
inline std::filesystem::path temp_dir(const std::string& name) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("actcap_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Runs `action`, which must throw actcap::Error with a message the user can read: one line that contains
// every fragment.
template <class Action>
void expect_one_line_error(Action&& action, std::initializer_list<std::string_view> fragments) {
  try {
    action();
    ADD_FAILURE() << "no error; expected one containing \"" << *fragments.begin() << "\"";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (std::string_view fragment : fragments) EXPECT_NE(message.find(fragment), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

// The message of the actcap::Error that `action` throws, or "no error".
template <class Action>
std::string error_of(Action&& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace actcap::test
