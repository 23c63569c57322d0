// The parsers and the JSON scanner under mutated input: the real sample lines
// cut, flipped and spliced at random (a fixed seed, so a failure repeats).
// Nothing may crash (the CI's sanitizer build watches memory), no count may
// come out negative, and the lines that survive unharmed still count.
#include <gtest/gtest.h>

#include <random>

#include "meter/json_scan.h"
#include "meter/parser.h"
#include "tests/meter_test_util.h"

namespace dormant::meter {
namespace {

namespace js = json_scan;

TEST(MeterJsonScan, PicksFieldsAndRejectsBrokenObjects) {
  std::string_view f[3];
  ASSERT_TRUE(js::Fields(R"( {"a" : 1, "b":"x\"}y", "c":{"d":[1,{"e":"}"}]}} )", {"a", "b", "c"}, f));
  EXPECT_EQ(f[0], "1");
  EXPECT_EQ(js::String(f[1]), "x\"}y");
  EXPECT_EQ(f[2], R"({"d":[1,{"e":"}"}]})");
  std::string_view d[1];
  ASSERT_TRUE(js::ObjectFields(f[2], {"d"}, d));
  EXPECT_EQ(d[0], R"([1,{"e":"}"}])");
  EXPECT_FALSE(js::ObjectFields(d[0], {"e"}, d));  // an array is not an object
  EXPECT_TRUE(js::Fields("{}", {"a"}, f));
  EXPECT_TRUE(f[0].empty());
  for (const char* bad : {"", "{", "[]", R"({"a":1)", R"({"a":1}x)", R"({"a" 1})", R"({"a":"x)",
                          R"({"a":1,})", R"({a:1})", R"({"a":{"b":1})", R"({"a":})"}) {
    EXPECT_FALSE(js::Fields(bad, {"a"}, f)) << bad;
  }
  EXPECT_EQ(js::Int("42"), 42);
  EXPECT_EQ(js::Int("-3"), -3);
  EXPECT_EQ(js::Int("\"42\""), std::nullopt);
  EXPECT_EQ(js::Int(""), std::nullopt);
  EXPECT_EQ(js::Number("\"873.5\""), 873.5);
  EXPECT_EQ(js::String("\"caf\\u00e9\""), "caf\xc3\xa9");
  EXPECT_EQ(js::String("12"), std::nullopt);
}

std::string Mutate(const std::string& line, std::mt19937& rng) {
  std::string s = line;
  static const char kNasty[] = "\"\\{}[]:,0-9 \n";
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    size_t at = rng() % s.size();
    switch (rng() % 5) {
      case 0: s.resize(at); break;                                       // cut
      case 1: s[at] = kNasty[rng() % (sizeof kNasty - 1)]; break;        // flip
      case 2: s.insert(at, 1, kNasty[rng() % (sizeof kNasty - 1)]); break;
      case 3: s.erase(at, 1 + rng() % 16); break;
      case 4: s.insert(at, s.substr(rng() % s.size(), rng() % 64)); break;  // splice
    }
  }
  std::replace(s.begin(), s.end(), '\n', ' ');  // one line stays one line
  return s;
}

void Fuzz(ProviderKind kind, const std::string& sample, int rounds) {
  std::vector<std::string> lines = dormant::testing::Lines(sample);
  ASSERT_FALSE(lines.empty()) << sample;
  std::mt19937 rng(1234);
  for (int round = 0; round < rounds; ++round) {
    std::string text;
    size_t intact = 0;
    for (const std::string& l : lines) {
      bool mutate = rng() % 3 == 0;
      text += (mutate ? Mutate(l, rng) : l) + "\n";
      intact += !mutate;
    }
    auto parser = MakeParser(kind, sample);
    std::vector<UsageEvent> events;
    std::vector<RateLimits> limits;
    size_t used = FeedLines(*parser, text, ParseSink{&events, &limits});
    ASSERT_EQ(used, text.size());
    EXPECT_EQ(parser->stats().lines, lines.size());
    for (const UsageEvent& e : events) {
      EXPECT_GE(e.tokens.input, 0);
      EXPECT_GE(e.tokens.cached_input, 0);
      EXPECT_GE(e.tokens.output, 0);
      EXPECT_GE(e.tokens.cache_write, 0);
      EXPECT_GE(e.tokens.cache_read, 0);
      EXPECT_FALSE(e.key.empty());
    }
    // Every line was either fine, counted as malformed, or harmlessly odd.
    EXPECT_LE(parser->stats().malformed, lines.size() - intact);
  }
}

TEST(MeterFuzz, CodexLinesMutated) {
  Fuzz(ProviderKind::kCodex, dormant::testing::CodexSample2(), 3000);
}

TEST(MeterFuzz, ClaudeLinesMutated) {
  Fuzz(ProviderKind::kClaude, dormant::testing::ClaudeRealLines(), 3000);
  Fuzz(ProviderKind::kClaude, dormant::testing::ClaudeSession1(), 500);
}

}  // namespace
}  // namespace dormant::meter
