// The log parsers against the real sample files in ../shared/samples, with
// totals worked out by hand from those files.
#include <gtest/gtest.h>

#include "meter/parser.h"
#include "tests/meter_test_util.h"

namespace dormant::meter {
namespace {

using dormant::testing::ClaudeRealLines;
using dormant::testing::ClaudeSession1;
using dormant::testing::ClaudeSession2;
using dormant::testing::CodexSample1;
using dormant::testing::CodexSample2;
using dormant::testing::Lines;
using dormant::testing::ReadAll;

struct Parsed {
  std::vector<UsageEvent> events;
  std::vector<RateLimits> limits;
  ParseStats stats;
  size_t consumed = 0;
};

Parsed ParseText(ProviderKind kind, const std::string& path, const std::string& text) {
  Parsed p;
  auto parser = MakeParser(kind, path);
  p.consumed = FeedLines(*parser, text, ParseSink{&p.events, &p.limits});
  p.stats = parser->stats();
  return p;
}

Parsed ParseFile(ProviderKind kind, const std::string& path) {
  std::string text = ReadAll(path);
  EXPECT_FALSE(text.empty()) << "sample missing: " << path;
  return ParseText(kind, path, text);
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

TEST(MeterTime, ParsesIsoTimes) {
  // 2026-11-24 is day 20781 since 1970-01-01: 20781 * 86400 = 1795478400;
  // 19:06:10 adds 68770 s -> 1795547170 s, .359 -> ms.
  EXPECT_EQ(ParseIsoTime("2026-11-24T19:06:10.359Z"), 1795547170359);
  EXPECT_EQ(ParseIsoTime("2026-11-24T20:06:10.359+01:00"), 1795547170359);
  EXPECT_EQ(ParseIsoTime("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseIsoTime("2026-02-30T00:00:00Z"), std::nullopt);
  EXPECT_EQ(ParseIsoTime("yesterday"), std::nullopt);
  EXPECT_EQ(FormatIsoTime(1795547170359), "2026-11-24T19:06:10.359Z");
}

TEST(CodexParser, ExecSampleHasOneTurn) {
  Parsed p = ParseFile(ProviderKind::kCodex, CodexSample1());
  // 14 lines; one token_count with total 1200 in (200 cached) / 34 out (12 reasoning).
  EXPECT_EQ(p.stats.lines, 14u);
  EXPECT_EQ(p.stats.malformed, 0u);
  ASSERT_EQ(p.events.size(), 1u);
  const UsageEvent& e = p.events[0];
  EXPECT_EQ(e.key, "codex:01a20ef3-85e2-7023-ae72-5223d70ae4cf:1234");
  EXPECT_EQ(e.client, "codex_exec");
  EXPECT_EQ(e.model, "gpt-test");
  EXPECT_EQ(e.session, "01a20ef3-85e2-7023-ae72-5223d70ae4cf");
  EXPECT_EQ(e.cwd, "/home/user/project");
  EXPECT_EQ(e.unix_ms, *ParseIsoTime("2026-11-24T19:06:10.561Z"));
  EXPECT_EQ(e.tokens, (TokenCounts{1200, 200, 34, 12, 0, 0, 1234}));
  EXPECT_FALSE(e.fast);
  ASSERT_EQ(p.limits.size(), 1u);
  EXPECT_EQ(p.limits[0].primary_used_percent, 42.5);
  EXPECT_EQ(p.limits[0].primary_window_minutes, 300);
  EXPECT_EQ(p.limits[0].primary_resets_at, 1795560000);
  EXPECT_EQ(p.limits[0].secondary_used_percent, 12.0);
  EXPECT_EQ(p.limits[0].secondary_window_minutes, 10080);
  EXPECT_EQ(p.limits[0].secondary_resets_at, 1796000000);
  EXPECT_EQ(p.limits[0].credits_balance, 873.5);  // written as the string "873.5"
  EXPECT_EQ(p.limits[0].MaxUsedPercent(), 42.5);
}

TEST(CodexParser, AppServerSampleDiffsCumulativeTotals) {
  Parsed p = ParseFile(ProviderKind::kCodex, CodexSample2());
  // Two turns. token_count totals are cumulative: 1234 then 2468; the second
  // event is 2468 - 1234 = 1234 tokens, not 2468. token_usage_record lines
  // (per response) are not counted on top.
  EXPECT_EQ(p.stats.lines, 23u);
  EXPECT_EQ(p.stats.malformed, 0u);
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.events[0].key, "codex:01a20ef3-aaf8-7b31-ae43-693bd7daac61:1234");
  EXPECT_EQ(p.events[1].key, "codex:01a20ef3-aaf8-7b31-ae43-693bd7daac61:2468");
  TokenCounts sum;
  for (const UsageEvent& e : p.events) {
    EXPECT_EQ(e.client, "t3code_desktop");
    EXPECT_EQ(e.model, "gpt-test");
    EXPECT_EQ(e.tokens, (TokenCounts{1200, 200, 34, 12, 0, 0, 1234}));
    sum += e.tokens;
  }
  // 2 x (1200 / 200 / 34 / 12 / 1234) = 2400 / 400 / 68 / 24 / 2468, the last cumulative total.
  EXPECT_EQ(sum, (TokenCounts{2400, 400, 68, 24, 0, 0, 2468}));
  EXPECT_EQ(p.limits.size(), 2u);
}

TEST(CodexParser, RepeatedCumulativeTotalsAreNotSummed) {
  std::vector<std::string> lines = Lines(CodexSample2());
  ASSERT_EQ(lines.size(), 23u);
  // Repeat the first token_count (line 13) and the second (line 22) twice each,
  // as Codex does on resume: still two events.
  std::vector<std::string> repeated = lines;
  repeated.insert(repeated.begin() + 13, lines[12]);
  repeated.push_back(lines[21]);
  repeated.push_back(lines[21]);
  Parsed p = ParseText(ProviderKind::kCodex, CodexSample2(), Join(repeated));
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.stats.repeats, 3u);
  EXPECT_EQ(p.events[0].tokens.total + p.events[1].tokens.total, 2468);
}

TEST(CodexParser, SavedStateResumesMidFile) {
  std::vector<std::string> lines = Lines(CodexSample2());
  std::vector<std::string> head(lines.begin(), lines.begin() + 14);
  std::vector<std::string> tail(lines.begin() + 14, lines.end());
  std::vector<UsageEvent> events;
  auto first = MakeCodexParser(CodexSample2());
  FeedLines(*first, Join(head), ParseSink{&events, nullptr});
  ASSERT_EQ(events.size(), 1u);
  std::string state = first->SaveState();

  auto second = MakeCodexParser(CodexSample2());
  ASSERT_TRUE(second->LoadState(state));
  FeedLines(*second, Join(tail), ParseSink{&events, nullptr});
  ASSERT_EQ(events.size(), 2u);
  // Resumed with the previous cumulative total: 2468 - 1234.
  EXPECT_EQ(events[1].tokens.total, 1234);
  EXPECT_EQ(events[1].client, "t3code_desktop");
  EXPECT_EQ(events[1].model, "gpt-test");
  EXPECT_FALSE(second->LoadState("{not json"));
}

TEST(CodexParser, MalformedAndPartialLinesAreCountedAndSkipped) {
  std::vector<std::string> lines = Lines(CodexSample1());
  std::string text = lines[0] + "\n";
  text += "this is not json\n";
  text += lines[12].substr(0, lines[12].size() / 2) + "\n";  // a cut token_count line
  text += lines[2].substr(0, 100) + "\n";                    // a cut ordinary line
  text += R"({"timestamp":"2026-11-24T19:06:10.561Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":5}}})"
          "\n";
  text += lines[5] + "\n" + lines[12] + "\n";
  text += lines[13].substr(0, 40);  // partial trailing line: not consumed
  Parsed p = ParseText(ProviderKind::kCodex, CodexSample1(), text);
  EXPECT_EQ(p.stats.malformed, 4u);
  EXPECT_EQ(p.stats.lines, 7u);
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].tokens.total, 1234);
  EXPECT_EQ(p.consumed, text.size() - 40);
}

TEST(CodexParser, SessionIdFromFileNameWithoutMeta) {
  std::vector<std::string> lines = Lines(CodexSample1());
  Parsed p = ParseText(ProviderKind::kCodex, CodexSample1(), lines[12] + "\n");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].session, "01a20ef3-85e2-7023-ae72-5223d70ae4cf");
  EXPECT_EQ(p.events[0].client, "");
}

TEST(ClaudeParser, Session1OfVersion2_1_328) {
  Parsed p = ParseFile(ProviderKind::kClaude, ClaudeSession1());
  EXPECT_EQ(p.stats.lines, 22u);
  EXPECT_EQ(p.stats.malformed, 0u);
  ASSERT_EQ(p.events.size(), 1u);
  const UsageEvent& e = p.events[0];
  // requestRef (no requestId in this version) completes the key.
  EXPECT_EQ(e.key, "claude:msg_mock1:770dd29c-808e-4d98-b589-7fd13e14342a");
  EXPECT_EQ(e.model, "claude-opus-5-5");
  EXPECT_EQ(e.client, "sdk-cli");
  EXPECT_EQ(e.session, "9a50f809-be62-4d19-9f21-a7bc2700d918");
  EXPECT_EQ(e.cwd, "/home/user/project");
  // 900 input, 300 cache write, 2000 cache read, 7 output: 900+300+2000+7 = 3207.
  EXPECT_EQ(e.tokens, (TokenCounts{900, 0, 7, 0, 300, 2000, 3207}));
  EXPECT_EQ(e.unix_ms, *ParseIsoTime("2026-11-24T19:15:26.941Z"));
}

TEST(ClaudeParser, Session2HasItsOwnRequest) {
  Parsed p = ParseFile(ProviderKind::kClaude, ClaudeSession2());
  EXPECT_EQ(p.stats.lines, 22u);
  ASSERT_EQ(p.events.size(), 1u);
  // Same mock message id as session 1, another request: another key.
  EXPECT_EQ(p.events[0].key, "claude:msg_mock1:bb4422d6-faa4-4107-9a9c-c5765ad73e86");
  EXPECT_EQ(p.events[0].tokens, (TokenCounts{900, 0, 7, 0, 300, 2000, 3207}));
}

TEST(ClaudeParser, RealLinesOfVersion2_1_126) {
  Parsed p = ParseFile(ProviderKind::kClaude, ClaudeRealLines());
  EXPECT_EQ(p.stats.lines, 3u);
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.events[0].key, "claude:msg_018kiwstHgeqNgrgECPooSo6:req_011CaggxfqM4mMStMeqm9CnX");
  EXPECT_EQ(p.events[0].model, "claude-sonnet-4-6");
  // 1 + 576 + 12342 + 117 = 13036
  // All 576 cache-creation tokens went to the one-hour cache.
  EXPECT_EQ(p.events[0].tokens, (TokenCounts{1, 0, 117, 0, 576, 12342, 13036, 576}));
  // 3 + 4087 + 10777 + 1191 = 16058
  EXPECT_EQ(p.events[1].tokens, (TokenCounts{3, 0, 1191, 0, 4087, 10777, 16058, 4087}));
  EXPECT_EQ(p.events[1].session, "b85787ce-2efa-4ad1-9cdd-2fdaedab231b");
}

TEST(ClaudeParser, RepeatedRequestLinesCountOnce) {
  std::vector<std::string> lines = Lines(ClaudeRealLines());
  std::string text = Join({lines[0], lines[0], lines[1], lines[2], lines[0]});
  Parsed p = ParseText(ProviderKind::kClaude, ClaudeRealLines(), text);
  EXPECT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.stats.repeats, 2u);
}

// Claude Code writes a line per content block, each with the usage known
// then: the output count grows from one line of a request to the next. The
// request counts its last (largest) usage, once, also across a restart.
TEST(ClaudeParser, LaterLinesOfARequestAddWhatTheyGrew) {
  std::vector<std::string> lines = Lines(ClaudeRealLines());
  auto with_output = [&](int64_t out) {
    std::string l = lines[0];
    const std::string from = "\"output_tokens\":117";
    size_t at = l.find(from);
    EXPECT_NE(at, std::string::npos);
    return l.replace(at, from.size(), "\"output_tokens\":" + std::to_string(out));
  };
  std::string text = Join({with_output(1), with_output(40), lines[1], with_output(117), with_output(117),
                           with_output(40)});
  Parsed p = ParseText(ProviderKind::kClaude, ClaudeRealLines(), text);
  ASSERT_EQ(p.events.size(), 3u);  // 1, then +39, then +77
  int64_t output = 0, total = 0;
  for (const UsageEvent& e : p.events) output += e.tokens.output, total += e.tokens.total;
  EXPECT_EQ(output, 117);
  EXPECT_EQ(total, 1 + 576 + 12342 + 117);
  EXPECT_EQ(p.events[0].tokens.cache_read, 12342);  // the first line has all of the input side
  EXPECT_EQ(p.events[1].tokens.cache_read, 0);      // later ones only the output they add
  EXPECT_EQ(p.events[1].tokens.output, 39);
  EXPECT_EQ(p.events[1].key, "claude:msg_018kiwstHgeqNgrgECPooSo6:req_011CaggxfqM4mMStMeqm9CnX:12959");
  EXPECT_EQ(p.stats.repeats, 2u);  // the second 117 and the smaller 40 after it

  // A restart between the lines of a request: the saved state knows what was
  // counted, so the next line adds only its growth.
  auto first = MakeParser(ProviderKind::kClaude, ClaudeRealLines());
  std::vector<UsageEvent> events;
  FeedLines(*first, Join({with_output(1), lines[1]}), ParseSink{&events, nullptr});
  std::string state = first->SaveState();
  auto second = MakeParser(ProviderKind::kClaude, ClaudeRealLines());
  ASSERT_EQ(events.size(), 1u);  // lines[1] is the user's line
  ASSERT_TRUE(second->LoadState(state)) << state;
  FeedLines(*second, Join({with_output(117), with_output(117)}), ParseSink{&events, nullptr});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].tokens.output, 116);
  EXPECT_EQ(events[1].tokens.total, 116);
  EXPECT_EQ(second->stats().repeats, 1u);
  EXPECT_FALSE(second->LoadState("{\"r\":[[\"k\",1]]}"));  // unreadable: refused, fresh state
  EXPECT_EQ(second->SaveState(), "");
}

// Ids and names come from the logs and may not be UTF-8; the saved state
// (JSON) must carry them exactly, or a resumed parser would build other keys.
TEST(ParserState, BytesThatAreNotUtf8SurviveASaveAndLoad) {
  std::vector<std::string> lines = Lines(ClaudeRealLines());
  std::string bad = "msg_\xf4\x28\x8c";
  std::string line = lines[0];
  const std::string id = "msg_018kiwstHgeqNgrgECPooSo6";
  line.replace(line.find(id), id.size(), bad);
  auto first = MakeParser(ProviderKind::kClaude, ClaudeRealLines());
  std::vector<UsageEvent> events;
  FeedLines(*first, Join({line}), ParseSink{&events, nullptr});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].key.find(bad), std::string::npos);
  std::string state = first->SaveState();  // threw before: invalid UTF-8 in a JSON dump
  auto second = MakeParser(ProviderKind::kClaude, ClaudeRealLines());
  ASSERT_TRUE(second->LoadState(state)) << state;
  FeedLines(*second, Join({line}), ParseSink{&events, nullptr});
  EXPECT_EQ(events.size(), 1u);  // known: a repeat, not a new request
  EXPECT_EQ(second->stats().repeats, 1u);

  std::vector<std::string> codex = Lines(CodexSample2());
  for (std::string& l : codex) {
    size_t at = l.find("\"originator\":\"t3code_desktop\"");
    if (at != std::string::npos) l.replace(at, 29, "\"originator\":\"t3\xff\xfe\"");
  }
  auto c1 = MakeCodexParser(CodexSample2());
  std::vector<UsageEvent> ce;
  FeedLines(*c1, Join(std::vector<std::string>(codex.begin(), codex.begin() + 14)), ParseSink{&ce, nullptr});
  ASSERT_EQ(ce.size(), 1u);
  EXPECT_EQ(ce[0].client, "t3\xff\xfe");
  auto c2 = MakeCodexParser(CodexSample2());
  ASSERT_TRUE(c2->LoadState(c1->SaveState()));
  FeedLines(*c2, Join(std::vector<std::string>(codex.begin() + 14, codex.end())), ParseSink{&ce, nullptr});
  ASSERT_EQ(ce.size(), 2u);
  EXPECT_EQ(ce[1].client, "t3\xff\xfe");
  EXPECT_EQ(ce[1].tokens.total, 1234);
}

TEST(ClaudeParser, MalformedLinesAreCounted) {
  std::vector<std::string> lines = Lines(ClaudeRealLines());
  std::string text = lines[0].substr(0, lines[0].size() - 10) + "\n";  // cut usage line
  text += lines[1].substr(0, 50) + "\n";                               // cut other line
  text += "\n";                                                        // blank: ignored
  text += lines[2] + "\n";
  Parsed p = ParseText(ProviderKind::kClaude, ClaudeRealLines(), text);
  EXPECT_EQ(p.stats.malformed, 2u);
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].tokens.total, 16058);
}

TEST(Prices, SampleEventsPricedByHand) {
  using enforcer::PriceUsage;
  enforcer::PriceTable t = enforcer::DefaultPriceTable();
  TokenCounts codex{1200, 200, 34, 12, 0, 0, 1234};
  // gpt-test is unknown: GPT-5.5 rates, flagged.
  // (1000 x 125 + 200 x 12.5 + 34 x 750) / 1e6 = (125000 + 2500 + 25500) / 1e6 = 0.153
  enforcer::Cost c = PriceUsage(t, "gpt-test", codex, true, false);
  EXPECT_DOUBLE_EQ(c.credits, 0.153);
  EXPECT_TRUE(c.unknown_model);
  EXPECT_DOUBLE_EQ(PriceUsage(t, "gpt-5.5", codex, true, false).credits, 0.153);
  EXPECT_FALSE(PriceUsage(t, "gpt-5.5", codex, true, false).unknown_model);
  // (1000 x 62.5 + 200 x 6.25 + 34 x 375) / 1e6 = (62500 + 1250 + 12750) / 1e6 = 0.0765
  EXPECT_DOUBLE_EQ(PriceUsage(t, "gpt-5.4", codex, true, false).credits, 0.0765);
  EXPECT_DOUBLE_EQ(PriceUsage(t, "gpt-5.4", codex, true, true).credits, 0.153);  // fast: 2x
  // (1000 x 43.75 + 200 x 4.375 + 34 x 350) / 1e6 = (43750 + 875 + 11900) / 1e6 = 0.056525
  EXPECT_DOUBLE_EQ(PriceUsage(t, "gpt-5.3-codex", codex, true, false).credits, 0.056525);
  // Opus 4.5+: 900 x 5 + 300 x 6.25 + 2000 x 0.5 + 7 x 25 = 4500 + 1875 + 1000 + 175 = 7550 -> $0.00755
  TokenCounts opus{900, 0, 7, 0, 300, 2000, 3207};
  enforcer::Cost o = PriceUsage(t, "claude-opus-5-5", opus, false, false);
  EXPECT_DOUBLE_EQ(o.usd, 0.00755);
  EXPECT_EQ(o.credits, 0);
  EXPECT_FALSE(o.unknown_model);
  // Sonnet: 1 x 3 + 576 x 3.75 + 12342 x 0.3 + 117 x 15 = 3 + 2160 + 3702.6 + 1755 = 7620.6
  EXPECT_NEAR(PriceUsage(t, "claude-sonnet-4-6", {1, 0, 117, 0, 576, 12342, 13036}, false, false).usd,
              0.0076206, 1e-12);
  // The same with the 576 written to the one-hour cache (2x input = 6):
  // 3 + 576 x 6 + 3702.6 + 1755 = 8916.6, as ccusage prices it.
  EXPECT_NEAR(PriceUsage(t, "claude-sonnet-4-6", {1, 0, 117, 0, 576, 12342, 13036, 576}, false, false).usd,
              0.0089166, 1e-12);
  // Older Opus keeps 15 / 75: 900 x 15 + 300 x 18.75 + 2000 x 1.5 + 7 x 75 = 22650
  EXPECT_NEAR(PriceUsage(t, "claude-opus-4-1-20250805", opus, false, false).usd, 0.02265, 1e-12);
  // Haiku 4.5: 900 + 300 x 1.25 + 2000 x 0.1 + 7 x 5 = 900 + 375 + 200 + 35 = 1510
  EXPECT_NEAR(PriceUsage(t, "claude-haiku-4-5", opus, false, false).usd, 0.00151, 1e-12);
  EXPECT_TRUE(PriceUsage(t, "some-new-model", opus, false, false).unknown_model);
}

}  // namespace
}  // namespace dormant::meter
