#pragma once
// Small text helpers shared across folders.
#include <string>

namespace actcap {

// `text` without leading and trailing spaces, tabs, carriage returns and newlines.
inline std::string trim(std::string text) {
  const char* space = " \t\r\n";
  text.erase(0, text.find_first_not_of(space));
  text.erase(text.find_last_not_of(space) + 1);
  return text;
}

}  // namespace actcap
