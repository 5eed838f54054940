#include "core/suggest.h"

#include <gtest/gtest.h>

namespace actcap {
namespace {

TEST(Suggest, EditDistanceCountsTranspositionsOnce) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("caputre", "capture"), 1u);
  EXPECT_EQ(edit_distance("--max-tokens", "--max-new-tokens"), 4u);
}

TEST(Suggest, NearestNameOnlyWhenCloseEnough) {
  const std::vector<std::string> commands = {"capture", "chat-template", "detokenize", "export", "ls", "sites"};
  EXPECT_EQ(nearest_name("caputre", commands), "capture");
  EXPECT_EQ(nearest_name("site", commands), "sites");
  EXPECT_EQ(nearest_name("frobnicate", commands), std::nullopt);
  EXPECT_EQ(nearest_name("--max-tokens", {"--max-new-tokens", "--max-length", "--model"}), "--max-new-tokens");
  EXPECT_EQ(nearest_name("x", {}), std::nullopt);
}

}  // namespace
}  // namespace actcap
