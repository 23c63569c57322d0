// Claude Code project logs (~/.claude/projects/<project>/<session>.jsonl).
//
// Each assistant line carries `message.usage` of the API request that made it;
// a response with several content blocks is written as several lines with the
// same message id and request (older versions write `requestId`, 2.1.3xx
// writes `requestRef`), each with the usage known when that block ended: the
// output count can grow from one line of a request to the next. So the first
// line of a request is an event keyed "claude:<message id>:<request>", and a
// later line whose counts went up is an event of the difference, keyed by the
// request and its new total; a line that repeats what was counted adds nothing.
//
// The requests seen in a file are remembered while the parser lives; the most
// recent ones (with what was counted of them) go into the saved state, so a
// restart in the middle of a request still counts only the difference.
#include <nlohmann/json.hpp>

#include <cstring>
#include <deque>
#include <string>
#include <unordered_map>

#include "meter/json_scan.h"
#include "meter/parser.h"
#include "meter/state_json.h"

namespace dormant::meter {
namespace {

namespace js = json_scan;

using js::Count;
using js::Text;

enum Field {
  kType, kId, kModel, kUsage, kInput, kCacheWrite, kCacheRead, kOutput, kThinking, kCacheWrite1h,
  kRequestId, kRequestRef, kTimestamp, kEntrypoint, kSession, kCwd, kUuid, kFieldCount
};

const js::Paths& ClaudePaths() {
  static const js::Paths paths{
      "type", "message.id", "message.model", "message.usage", "message.usage.input_tokens",
      "message.usage.cache_creation_input_tokens", "message.usage.cache_read_input_tokens",
      "message.usage.output_tokens", "message.usage.output_tokens_details.thinking_tokens",
      "message.usage.cache_creation.ephemeral_1h_input_tokens", "requestId", "requestRef",
      "timestamp", "entrypoint", "sessionId", "cwd", "uuid"};
  return paths;
}

// How many recent requests the saved state carries.
constexpr size_t kSavedRequests = 32;

bool AtLeast(const TokenCounts& a, const TokenCounts& b) {
  return a.input >= b.input && a.cache_write >= b.cache_write && a.cache_read >= b.cache_read &&
         a.output >= b.output && a.reasoning >= b.reasoning && a.cache_write_1h >= b.cache_write_1h;
}

class ClaudeParser : public LineParser {
 public:
  explicit ClaudeParser(std::string path) : path_(std::move(path)) {}

  void ParseLine(std::string_view line, const ParseSink& sink) override {
    ++stats_.lines;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;  // blank
    // A quote inside a JSON string is escaped, so an unescaped "usage": can
    // only be a key: lines without one carry no usage and need no parse.
    static constexpr char kUsageKey[] = "\"usage\":";
    if (!memmem(line.data(), line.size(), kUsageKey, sizeof kUsageKey - 1)) {
      if (!LooksLikeJsonObject(line)) ++stats_.malformed;
      return;
    }
    std::string_view f[kFieldCount];
    if (!js::Extract(line, ClaudePaths(), f)) {
      ++stats_.malformed;
      return;
    }
    if (f[kType] != "\"assistant\"" || f[kUsage].empty() || f[kUsage].front() != '{') return;
    OnUsage(f, sink);
  }

  std::string SaveState() const override {
    if (recent_.empty()) return "";
    nlohmann::json r = nlohmann::json::array();
    for (const std::string& key : recent_) {
      const TokenCounts& t = counted_.at(key);
      r.push_back({state_json::Save(key), t.input, t.cache_write, t.cache_read, t.output, t.reasoning,
                   t.cache_write_1h});
    }
    return nlohmann::json{{"r", std::move(r)}}.dump();
  }

  bool LoadState(std::string_view state) override {
    Reset();
    if (state.empty()) return true;
    auto s = nlohmann::json::parse(state.begin(), state.end(), nullptr, false);
    if (s.is_discarded() || !s.is_object() || !s.contains("r") || !s["r"].is_array()) return false;
    for (const auto& e : s["r"]) {
      if (!e.is_array() || e.size() != 7) return Reset(), false;
      std::optional<std::string> key = state_json::Load(e[0]);
      if (!key) return Reset(), false;
      for (size_t i = 1; i < 7; ++i)
        if (!e[i].is_number_integer()) return Reset(), false;
      TokenCounts t;
      t.input = e[1].get<int64_t>();
      t.cache_write = e[2].get<int64_t>();
      t.cache_read = e[3].get<int64_t>();
      t.output = e[4].get<int64_t>();
      t.reasoning = e[5].get<int64_t>();
      t.cache_write_1h = e[6].get<int64_t>();
      t.total = t.input + t.cache_write + t.cache_read + t.output;
      Remember(*key, t);
    }
    return true;
  }

  void Reset() override {
    counted_.clear();
    recent_.clear();
  }

 private:
  void OnUsage(const std::string_view* f, const ParseSink& sink) {
    std::string id = Text(f[kId]);
    std::string request = Text(f[kRequestId]);
    if (request.empty()) request = Text(f[kRequestRef]);
    if (id.empty()) id = Text(f[kUuid]);
    auto when = ParseIsoTime(js::Unquoted(f[kTimestamp]));
    if (id.empty() || !when) {
      ++stats_.malformed;
      return;
    }
    TokenCounts t;
    t.input = Count(f[kInput]);
    t.cache_write = Count(f[kCacheWrite]);
    t.cache_read = Count(f[kCacheRead]);
    t.output = Count(f[kOutput]);
    t.reasoning = Count(f[kThinking]);
    t.cache_write_1h = Count(f[kCacheWrite1h]);
    t.total = t.input + t.cache_write + t.cache_read + t.output;
    if (t.input < 0 || t.cache_write < 0 || t.cache_read < 0 || t.output < 0 || t.reasoning < 0 ||
        t.cache_write_1h < 0) {
      ++stats_.malformed;
      return;
    }
    if (t.total == 0) return;  // synthetic / error messages carry zeros
    std::string key;
    key.reserve(8 + id.size() + 1 + request.size());
    key.append("claude:").append(id).append(":").append(request);
    TokenCounts counts = t;
    auto seen = counted_.find(key);
    if (seen != counted_.end()) {
      // A later line of the same request: only what it adds counts.
      if (!AtLeast(t, seen->second) || t == seen->second) {
        ++stats_.repeats;
        return;
      }
      counts = t - seen->second;
      seen->second = t;
      Touch(key);
      key.append(":").append(std::to_string(t.total));
    } else {
      Remember(key, t);
    }
    UsageEvent e;
    e.key = std::move(key);
    e.tokens = counts;
    e.provider = ProviderKind::kClaude;
    e.unix_ms = *when;
    e.client = Text(f[kEntrypoint]);
    e.model = Text(f[kModel]);
    e.session = Text(f[kSession]);
    e.cwd = Text(f[kCwd]);
    ++stats_.events;
    if (sink.events) sink.events->push_back(std::move(e));
  }

  // A request not seen before.
  void Remember(const std::string& key, const TokenCounts& t) {
    counted_[key] = t;
    recent_.push_back(key);
    if (recent_.size() > kSavedRequests) recent_.pop_front();
  }

  // A request seen again: it becomes the newest. `recent_` keeps the last
  // kSavedRequests distinct requests, newest last.
  void Touch(const std::string& key) {
    if (!recent_.empty() && recent_.back() == key) return;
    for (auto it = recent_.begin(); it != recent_.end(); ++it) {
      if (*it == key) {
        recent_.erase(it);
        break;
      }
    }
    recent_.push_back(key);
    if (recent_.size() > kSavedRequests) recent_.pop_front();
  }

  std::string path_;
  std::unordered_map<std::string, TokenCounts> counted_;
  std::deque<std::string> recent_;
};

}  // namespace

std::unique_ptr<LineParser> MakeClaudeParser(std::string path) {
  return std::make_unique<ClaudeParser>(std::move(path));
}

}  // namespace dormant::meter
