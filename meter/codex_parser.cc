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
#include <string>

#include "meter/parser.h"

namespace dormant::meter {
namespace {

using nlohmann::json;

int64_t Int(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end()) return 0;
  if (it->is_number_integer() || it->is_number_unsigned()) return it->get<int64_t>();
  if (it->is_number_float()) return static_cast<int64_t>(it->get<double>());
  return 0;
}

std::string Str(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<double> Number(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) {  // credits.balance is written as a string
    const std::string& s = it->get_ref<const std::string&>();
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() && *end == '\0') return v;
  }
  return std::nullopt;
}

std::optional<int64_t> OptInt(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_number()) return std::nullopt;
  return it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
}

TokenCounts Usage(const json& u) {
  TokenCounts t;
  t.input = Int(u, "input_tokens");
  t.cached_input = Int(u, "cached_input_tokens");
  t.output = Int(u, "output_tokens");
  t.reasoning = Int(u, "reasoning_output_tokens");
  t.cache_write = Int(u, "cache_write_input_tokens");
  t.total = u.contains("total_tokens") ? Int(u, "total_tokens") : t.input + t.output;
  return t;
}

TokenCounts Minus(const TokenCounts& a, const TokenCounts& b) {
  return {a.input - b.input,         a.cached_input - b.cached_input, a.output - b.output,
          a.reasoning - b.reasoning, a.cache_write - b.cache_write,   a.cache_read - b.cache_read,
          a.total - b.total,         a.cache_write_1h - b.cache_write_1h};
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
// event_msg, the payload type sit in the first couple of hundred bytes.
LineKind Classify(std::string_view line) {
  std::string_view head = line.substr(0, 320);
  auto has = [&](const char* s) {
    return memmem(head.data(), head.size(), s, std::strlen(s)) != nullptr;
  };
  if (has("\"type\":\"token_count\"")) return LineKind::kTokenCount;
  if (has("\"type\":\"turn_context\"")) return LineKind::kTurnContext;
  if (has("\"type\":\"session_meta\"")) return LineKind::kSessionMeta;
  if (has("\"type\":\"")) return LineKind::kOther;
  return LineKind::kUnknown;  // unusual formatting: parse it fully
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
    json j = json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++stats_.malformed;
      return;
    }
    std::string type = Str(j, "type");
    auto payload = j.find("payload");
    if (payload == j.end() || !payload->is_object()) return;
    if (type == "session_meta") {
      OnSessionMeta(*payload);
    } else if (type == "turn_context") {
      OnTurnContext(*payload);
    } else if (type == "event_msg" && Str(*payload, "type") == "token_count") {
      OnTokenCount(j, *payload, sink);
    }
  }

  std::string SaveState() const override {
    json s = {{"s", session_}, {"c", client_}, {"w", cwd_}, {"m", model_}, {"f", fast_},
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
    session_ = Str(s, "s");
    client_ = Str(s, "c");
    cwd_ = Str(s, "w");
    model_ = Str(s, "m");
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
  void OnSessionMeta(const json& p) {
    std::string id = Str(p, "id");
    if (id.empty()) id = Str(p, "session_id");
    if (!id.empty()) session_ = id;
    client_ = Str(p, "originator");
    cwd_ = Str(p, "cwd");
  }

  void OnTurnContext(const json& p) {
    std::string model = Str(p, "model");
    if (!model.empty()) model_ = model;
    std::string cwd = Str(p, "cwd");
    if (!cwd.empty()) cwd_ = cwd;
    std::string tier = Str(p, "service_tier");
    fast_ = tier == "fast" || tier == "priority";
  }

  void OnTokenCount(const json& line, const json& p, const ParseSink& sink) {
    int64_t when = 0;
    if (auto t = ParseIsoTime(Str(line, "timestamp"))) when = *t;
    if (auto rl = p.find("rate_limits"); rl != p.end() && rl->is_object() && sink.limits)
      sink.limits->push_back(Limits(*rl, when));
    auto info = p.find("info");
    if (info == p.end() || info->is_null()) return;  // a rate-limits-only update
    auto total_it = info->find("total_token_usage");
    if (!info->is_object() || total_it == info->end() || !total_it->is_object()) {
      ++stats_.malformed;
      return;
    }
    TokenCounts total = Usage(*total_it);
    TokenCounts delta = Minus(total, prev_);
    if (AnyNegative(delta)) {
      // The cumulative total went backwards (a new context for the same
      // session): trust the per-call usage for this step.
      auto last = info->find("last_token_usage");
      delta = last != info->end() && last->is_object() ? Usage(*last) : total;
    }
    prev_ = total;
    if (delta.Zero() || (delta.total == 0 && delta.input == 0 && delta.output == 0)) {
      ++stats_.repeats;
      return;
    }
    UsageEvent e;
    e.key = "codex:" + session_ + ":" + std::to_string(total.total);
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

  RateLimits Limits(const json& rl, int64_t when) const {
    RateLimits r;
    r.unix_ms = when;
    r.session = session_;
    if (auto it = rl.find("primary"); it != rl.end() && it->is_object()) {
      r.primary_used_percent = Number(*it, "used_percent");
      r.primary_window_minutes = OptInt(*it, "window_minutes");
      r.primary_resets_at = OptInt(*it, "resets_at");
    }
    if (auto it = rl.find("secondary"); it != rl.end() && it->is_object()) {
      r.secondary_used_percent = Number(*it, "used_percent");
      r.secondary_window_minutes = OptInt(*it, "window_minutes");
      r.secondary_resets_at = OptInt(*it, "resets_at");
    }
    if (auto it = rl.find("credits"); it != rl.end() && it->is_object())
      r.credits_balance = Number(*it, "balance");
    return r;
  }

  std::string path_;
  std::string session_, client_, cwd_, model_;
  bool fast_ = false;
  TokenCounts prev_;
};

}  // namespace

std::unique_ptr<LineParser> MakeCodexParser(std::string path) {
  return std::make_unique<CodexParser>(std::move(path));
}

}  // namespace dormant::meter
