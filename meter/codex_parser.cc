// Codex rollout files ($CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl).
//
// Usage comes from event_msg/token_count: `info.total_token_usage` is the
// session's cumulative total, and Codex writes the same total again (after a
// turn, on resume, with only rate limits changed). So an event is the
// difference between this total and the previous one; an unchanged total is a
// repeat and adds nothing. The per-response token_usage_record lines carry the
// same usage a second time and are ignored, or it would count twice.
#include <nlohmann/json.hpp>

#include <cstring>

#if defined(__SSE2__) && !defined(DORMANT_NO_SIMD)
#include <emmintrin.h>
#endif
#include <string>

#include "meter/json_scan.h"
#include "meter/parser.h"
#include "meter/state_json.h"

namespace dormant::meter {
namespace {

using nlohmann::json;
namespace js = json_scan;

using js::Count;
using js::Text;
using js::Unquoted;

// A Codex token usage object; false when `raw` is not an object.
bool Usage(std::string_view raw, TokenCounts* t) {
  std::string_view f[6];
  if (!js::ObjectFields(raw, {"input_tokens", "cached_input_tokens", "output_tokens",
                              "reasoning_output_tokens", "cache_write_input_tokens", "total_tokens"},
                        f))
    return false;
  *t = {};
  t->input = Count(f[0]);
  t->cached_input = Count(f[1]);
  t->output = Count(f[2]);
  t->reasoning = Count(f[3]);
  t->cache_write = Count(f[4]);
  t->total = f[5].empty() ? t->input + t->output : Count(f[5]);
  return true;
}

bool AnyNegative(const TokenCounts& t) {
  return t.input < 0 || t.cached_input < 0 || t.output < 0 || t.reasoning < 0 ||
         t.cache_write < 0 || t.total < 0;
}

// The session id in "rollout-2026-11-24T19-06-10-<uuid>.jsonl": the last 36
// characters before ".jsonl".
std::string SessionFromPath(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string name = path.substr(slash == std::string::npos ? 0 : slash + 1);
  if (name.size() > 6 && name.ends_with(".jsonl")) name.resize(name.size() - 6);
  return name.size() >= 36 ? name.substr(name.size() - 36) : name;
}

enum class LineKind { kTokenCount, kSessionMeta, kTurnContext, kOther, kUnknown };

// Codex writes compact JSON with a fixed key order: the record type and, for
// event_msg, the payload type are the first two "type" values of the line, in
// its first few hundred bytes. One memmem per "type" instead of a search per
// known name: this runs on every line.
std::string_view NextType(std::string_view head, size_t* from) {
  static constexpr char kType[] = "\"type\":\"";
  constexpr size_t kLen = sizeof kType - 1;
  const char* d = head.data();
  const size_t n = head.size();
  size_t at = *from;
  auto match = [&](size_t i) { return std::memcmp(d + i, kType, kLen) == 0; };
  size_t hit = std::string_view::npos;
#if defined(__SSE2__) && !defined(DORMANT_NO_SIMD)
  // Candidates: a quote followed by a 't', 16 positions at a time.
  const __m128i quote = _mm_set1_epi8('"'), t = _mm_set1_epi8('t');
  for (; hit == std::string_view::npos && at + 16 + kLen <= n; at += 16) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + at));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + at + 1));
    unsigned m = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, quote), _mm_cmpeq_epi8(b, t))));
    while (m) {
      size_t i = at + static_cast<size_t>(__builtin_ctz(m));
      m &= m - 1;
      if (match(i)) {
        hit = i;
        break;
      }
    }
  }
#endif
  for (; hit == std::string_view::npos && at + kLen <= n; ++at)
    if (d[at] == '"' && match(at)) hit = at;
  if (hit == std::string_view::npos) return {};
  size_t start = hit + kLen;
  size_t end = head.find('"', start);
  if (end == std::string_view::npos) return {};
  *from = end + 1;
  return head.substr(start, end - start);
}

LineKind Classify(std::string_view line) {
  std::string_view head = line.substr(0, 320);
  size_t from = 0;
  std::string_view type = NextType(head, &from);
  if (type.empty()) return LineKind::kUnknown;  // unusual formatting: parse it fully
  if (type == "turn_context") return LineKind::kTurnContext;
  if (type == "session_meta") return LineKind::kSessionMeta;
  if (type == "event_msg") {
    std::string_view inner = NextType(head, &from);
    if (inner == "token_count") return LineKind::kTokenCount;
    return inner.empty() ? LineKind::kUnknown : LineKind::kOther;
  }
  return LineKind::kOther;
}

// Everything read from a Codex line, in one pass (js::Extract). The rate
// limits are taken whole and read apart only when their text changed: Codex
// repeats them on every token_count line, and they change a few times an hour.
enum Field {
  kTimestamp, kType, kPayloadType,
  kMetaId, kMetaSessionId, kOriginator, kCwd,               // session_meta
  kModel, kServiceTier,                                     // turn_context (and kCwd)
  kInfo, kTotalUsage, kLastUsage, kRateLimits,              // token_count
  kPayload, kFieldCount
};

const js::Paths& CodexPaths() {
  static const js::Paths paths{
      "timestamp", "type", "payload.type",
      "payload.id", "payload.session_id", "payload.originator", "payload.cwd",
      "payload.model", "payload.service_tier",
      "payload.info", "payload.info.total_token_usage", "payload.info.last_token_usage",
      "payload.rate_limits", "payload"};
  return paths;
}

enum LimitField {
  kPrimaryUsed, kPrimaryWindow, kPrimaryResets, kSecondaryUsed, kSecondaryWindow, kSecondaryResets,
  kCreditsBalance, kLimitFieldCount
};

const js::Paths& LimitPaths() {
  static const js::Paths paths{"primary.used_percent",   "primary.window_minutes",
                               "primary.resets_at",      "secondary.used_percent",
                               "secondary.window_minutes", "secondary.resets_at",
                               "credits.balance"};
  return paths;
}

class CodexParser : public LineParser {
 public:
  explicit CodexParser(std::string path) : path_(std::move(path)) { Reset(); }

  void ParseLine(std::string_view line, const ParseSink& sink) override {
    ++stats_.lines;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;  // blank
    LineKind kind = Classify(line);
    if (kind == LineKind::kOther) {
      if (!LooksLikeJsonObject(line)) ++stats_.malformed;
      return;
    }
    std::string_view f[kFieldCount];
    static_assert(kFieldCount == 14);
    if (!js::Extract(line, CodexPaths(), f)) {
      ++stats_.malformed;
      return;
    }
    if (f[kPayload].empty() || f[kPayload].front() != '{') return;
    std::string_view type = f[kType];
    if (type == "\"session_meta\"") {
      OnSessionMeta(f);
    } else if (type == "\"turn_context\"") {
      OnTurnContext(f);
    } else if (type == "\"event_msg\"" && f[kPayloadType] == "\"token_count\"") {
      OnTokenCount(f, sink);
    }
  }

  std::string SaveState() const override {
    namespace sj = state_json;
    json s = {{"s", sj::Save(session_)}, {"c", sj::Save(client_)}, {"w", sj::Save(cwd_)},
              {"m", sj::Save(model_)}, {"f", fast_},
              {"t", {prev_.input, prev_.cached_input, prev_.output, prev_.reasoning,
                     prev_.cache_write, prev_.total}}};
    return s.dump();
  }

  bool LoadState(std::string_view state) override {
    Reset();
    if (state.empty()) return true;
    json s = json::parse(state.begin(), state.end(), nullptr, false);
    if (s.is_discarded() || !s.is_object() || !s.contains("t") || !s["t"].is_array() ||
        s["t"].size() != 6)
      return false;
    auto text = [&](const char* key) {
      auto it = s.find(key);
      return it == s.end() ? std::string() : state_json::Load(*it).value_or("");
    };
    session_ = text("s");
    client_ = text("c");
    cwd_ = text("w");
    model_ = text("m");
    fast_ = s.value("f", false);
    const json& t = s["t"];
    prev_ = {t[0].get<int64_t>(), t[1].get<int64_t>(), t[2].get<int64_t>(), t[3].get<int64_t>(),
             t[4].get<int64_t>(), 0,                   t[5].get<int64_t>()};
    if (session_.empty()) session_ = SessionFromPath(path_);
    return true;
  }

  void Reset() override {
    session_ = SessionFromPath(path_);
    client_.clear();
    cwd_.clear();
    model_.clear();
    fast_ = false;
    prev_ = {};
  }

 private:
  void OnSessionMeta(const std::string_view* f) {
    std::string id = Text(f[kMetaId]);
    if (id.empty()) id = Text(f[kMetaSessionId]);
    if (!id.empty()) session_ = id;
    client_ = Text(f[kOriginator]);
    cwd_ = Text(f[kCwd]);
  }

  void OnTurnContext(const std::string_view* f) {
    std::string model = Text(f[kModel]);
    if (!model.empty()) model_ = model;
    std::string cwd = Text(f[kCwd]);
    if (!cwd.empty()) cwd_ = cwd;
    std::string_view tier = f[kServiceTier];
    fast_ = tier == "\"fast\"" || tier == "\"priority\"";
  }

  void OnTokenCount(const std::string_view* f, const ParseSink& sink) {
    int64_t when = 0;
    if (auto t = ParseIsoTime(Unquoted(f[kTimestamp]))) when = *t;
    if (sink.limits && !f[kRateLimits].empty() && f[kRateLimits].front() == '{')
      sink.limits->push_back(Limits(f[kRateLimits], when));
    std::string_view info = f[kInfo];
    if (info.empty() || js::IsNull(info)) return;  // a rate-limits-only update
    TokenCounts total;
    if (!Usage(f[kTotalUsage], &total)) {
      ++stats_.malformed;
      return;
    }
    TokenCounts delta = total - prev_;
    if (AnyNegative(delta)) {
      // The cumulative total went backwards (a new context for the same
      // session): trust the per-call usage for this step.
      if (!Usage(f[kLastUsage], &delta)) delta = total;
    }
    prev_ = total;
    if (AnyNegative(delta)) {  // negative counts: not something Codex writes
      ++stats_.malformed;
      return;
    }
    if (delta.Zero() || (delta.total == 0 && delta.input == 0 && delta.output == 0)) {
      ++stats_.repeats;
      return;
    }
    UsageEvent e;
    e.key.reserve(8 + session_.size() + 20);
    e.key.append("codex:").append(session_).append(":").append(std::to_string(total.total));
    e.provider = ProviderKind::kCodex;
    e.unix_ms = when;
    e.client = client_;
    e.model = model_;
    e.session = session_;
    e.cwd = cwd_;
    e.tokens = delta;
    e.fast = fast_;
    ++stats_.events;
    if (sink.events) sink.events->push_back(std::move(e));
  }

  RateLimits Limits(std::string_view raw, int64_t when) {
    if (raw != limits_text_) {
      limits_text_.assign(raw);
      limits_ = {};
      std::string_view f[kLimitFieldCount];
      if (js::Extract(raw, LimitPaths(), f)) {
        limits_.primary_used_percent = js::Number(f[kPrimaryUsed]);
        limits_.primary_window_minutes = js::Int(f[kPrimaryWindow]);
        limits_.primary_resets_at = js::Int(f[kPrimaryResets]);
        limits_.secondary_used_percent = js::Number(f[kSecondaryUsed]);
        limits_.secondary_window_minutes = js::Int(f[kSecondaryWindow]);
        limits_.secondary_resets_at = js::Int(f[kSecondaryResets]);
        limits_.credits_balance = js::Number(f[kCreditsBalance]);
      }
    }
    RateLimits r = limits_;
    r.unix_ms = when;
    r.session = session_;
    return r;
  }

  std::string path_;
  std::string session_, client_, cwd_, model_;
  bool fast_ = false;
  TokenCounts prev_;
  std::string limits_text_;  // the rate limits last read apart, and what they said
  RateLimits limits_;
};

}  // namespace

std::unique_ptr<LineParser> MakeCodexParser(std::string path) {
  return std::make_unique<CodexParser>(std::move(path));
}

}  // namespace dormant::meter
