#include "capture/grading.h"

#include <gtest/gtest.h>

namespace actcap {
namespace {

TEST(CaptureGrading, NormalisesLikeSquad) {
  EXPECT_EQ(normalize_answer("The  Eiffel Tower!"), "eiffel tower");
  EXPECT_EQ(normalize_answer("  an apple,\ta pear\n"), "apple pear");
  EXPECT_EQ(normalize_answer("theory"), "theory");  // articles only as whole words
  EXPECT_EQ(normalize_answer("$1,000.50"), "100050");
  EXPECT_EQ(normalize_answer("ÉCOLE «Normale»"), "école normale");
  EXPECT_EQ(normalize_answer("...!"), "");
}

TEST(CaptureGrading, ExactMatchAndContains) {
  auto g = grade_answer(" Paris.", "paris");
  EXPECT_TRUE(g.exact_match);
  EXPECT_TRUE(g.contains);
  g = grade_answer("The capital is Paris, of course", "Paris");
  EXPECT_FALSE(g.exact_match);
  EXPECT_TRUE(g.contains);
  g = grade_answer("Parisian food", "Paris");  // word boundaries: not a match
  EXPECT_FALSE(g.contains);
  g = grade_answer("14", "4");
  EXPECT_FALSE(g.contains);
  g = grade_answer("It is 4.", nlohmann::json::array({"four", "4"}));  // any accepted answer
  EXPECT_TRUE(g.contains);
  EXPECT_FALSE(g.exact_match);
  g = grade_answer("anything", "");  // an answer that normalises to nothing is never contained
  EXPECT_FALSE(g.contains);
  EXPECT_EQ(g.to_json(), (nlohmann::json{{"exact_match", false}, {"contains", false}}));
}

TEST(CaptureGrading, AccuracySummary) {
  Accuracy accuracy;
  EXPECT_EQ(accuracy.summary()["graded"], 0);
  accuracy.add({true, true});
  accuracy.add({false, true});
  accuracy.add({false, false});
  accuracy.add({false, false});
  auto s = accuracy.summary();
  EXPECT_EQ(s["graded"], 4);
  EXPECT_DOUBLE_EQ(s["exact_match"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(s["contains"].get<double>(), 0.5);
}

}  // namespace
}  // namespace actcap
