// The parsers and the JSON scanner under mutated input: the real sample lines
// cut, flipped and spliced at random (a fixed seed, so a failure repeats).
// Nothing may crash (the CI's sanitizer build watches memory), no count may
// come out negative, and the lines that survive unharmed still count.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

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
  EXPECT_EQ(js::Int("1.2e3"), 1200);
  EXPECT_EQ(js::Int("6.7e69"), std::nullopt);  // out of range: no count (was undefined behaviour)
  EXPECT_EQ(js::Int("-1e300"), std::nullopt);
  EXPECT_EQ(js::Number("\"873.5\""), 873.5);
  EXPECT_EQ(js::String("\"caf\\u00e9\""), "caf\xc3\xa9");
  EXPECT_EQ(js::String("12"), std::nullopt);
}

// The block scanner at its edges: strings, escapes and brackets across the
// 64-byte block boundaries, at every offset.
TEST(MeterJsonScan, BlockBoundaries) {
  for (size_t pad = 0; pad < 140; ++pad) {
    std::string filler(pad, 'x');
    std::string line = R"({"f":")" + filler + R"(\\\"}{[","v":{"a":[1,"]\\",{"b":"\"}"}],"c":")" +
                       filler + R"("},"w":2})";
    std::string_view f[2];
    ASSERT_TRUE(js::Fields(line, {"v", "w"}, f)) << pad;
    EXPECT_EQ(f[1], "2") << pad;
    EXPECT_EQ(f[0], R"({"a":[1,"]\\",{"b":"\"}"}],"c":")" + filler + R"("})") << pad;
    // A backslash run ending exactly at a block's last byte.
    std::string esc = "{\"k\":\"" + std::string(pad, '\\') + (pad % 2 ? "\\" : "") + "\"}";
    std::string_view k[1];
    ASSERT_TRUE(js::Fields(esc, {"k"}, k)) << pad;
    // Every cut of the line is refused.
    for (size_t cut = 0; cut < line.size(); cut += 7)
      EXPECT_FALSE(js::Fields(line.substr(0, cut), {"v"}, f)) << pad << " " << cut;
  }
}

TEST(MeterJsonScan, ExtractPaths) {
  js::Paths paths{"a", "b.c", "b.d.e", "b.d", "x.y", "z"};
  std::string_view f[6];
  ASSERT_TRUE(js::Extract(R"({"a":1,"b":{"d":{"e":"E","q":[{}]},"c":[2]},"x":null,"z":{"y":3}})", paths, f));
  EXPECT_EQ(f[0], "1");
  EXPECT_EQ(f[1], "[2]");
  EXPECT_EQ(f[2], "\"E\"");
  EXPECT_EQ(f[3], R"({"e":"E","q":[{}]})");
  EXPECT_TRUE(f[4].empty());  // x is not an object
  EXPECT_EQ(f[5], R"({"y":3})");
  for (const char* bad : {"", "{", R"({"a":1)", R"({"a":1}x)", R"({"b":{"c":1,}})", R"({"b":{"c" 1}})",
                          R"({"b":{"d":{"e":}}})", R"({"b":{"d":{"e":"x}}})", R"({"a":[1,2})"}) {
    EXPECT_FALSE(js::Extract(bad, paths, f)) << bad;
  }
}

// Against a strict parser: every valid object is accepted with the same
// values; every cut of one is refused.
TEST(MeterJsonScan, AgreesWithAStrictParser) {
  std::vector<std::string> lines = dormant::testing::Lines(dormant::testing::CodexSample2());
  for (const std::string& l : dormant::testing::Lines(dormant::testing::ClaudeRealLines())) lines.push_back(l);
  js::Paths paths{"type", "payload.type", "payload.info.total_token_usage", "message.usage", "timestamp"};
  const char* names[][3] = {{"type", nullptr, nullptr}, {"payload", "type", nullptr},
                            {"payload", "info", "total_token_usage"}, {"message", "usage", nullptr},
                            {"timestamp", nullptr, nullptr}};
  for (const std::string& line : lines) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line.substr(0, 80);
    std::string_view f[5];
    ASSERT_TRUE(js::Extract(line, paths, f)) << line.substr(0, 80);
    for (size_t i = 0; i < 5; ++i) {
      const nlohmann::json* v = &j;
      for (const char* k : names[i]) {
        if (!k) break;
        v = v && v->is_object() && v->contains(k) ? &(*v)[k] : nullptr;
      }
      if (!v) {
        EXPECT_TRUE(f[i].empty()) << i;
      } else {
        EXPECT_EQ(nlohmann::json::parse(f[i]), *v) << i;
      }
    }
    for (size_t cut = 1; cut < line.size(); cut += 3)
      EXPECT_FALSE(js::Extract(line.substr(0, cut), paths, f)) << cut;
  }
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
