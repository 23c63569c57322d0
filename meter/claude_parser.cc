// Claude Code project logs (~/.claude/projects/<project>/<session>.jsonl).
//
// Each assistant line carries `message.usage` of the API request that made it;
// a response with several content blocks is written as several lines with the
// same message id and request, each repeating the usage. So the key is message
// id + request id (older versions write `requestId`, 2.1.3xx writes
// `requestRef`), and only the first line of a key counts.
#include <cstring>
#include <string>
#include <unordered_set>

#include "meter/json_scan.h"
#include "meter/parser.h"

namespace dormant::meter {
namespace {

namespace js = json_scan;

std::string Text(std::string_view raw) { return js::String(raw).value_or(""); }
int64_t Count(std::string_view raw) { return raw.empty() ? 0 : js::Int(raw).value_or(0); }

class ClaudeParser : public LineParser {
 public:
  explicit ClaudeParser(std::string path) : path_(std::move(path)) {}

  void ParseLine(std::string_view line, const ParseSink& sink) override {
    ++stats_.lines;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;  // blank
    // A quote inside a JSON string is escaped, so an unescaped "usage": can
    // only be a key: lines without one carry no usage and need no parse.
    static constexpr char kUsage[] = "\"usage\":";
    if (!memmem(line.data(), line.size(), kUsage, sizeof kUsage - 1)) {
      if (!LooksLikeJsonObject(line)) ++stats_.malformed;
      return;
    }
    enum { kType, kMessage, kRequestId, kRequestRef, kTimestamp, kEntrypoint, kSession, kCwd, kUuid };
    std::string_view top[9];
    if (!js::Fields(line,
                    {"type", "message", "requestId", "requestRef", "timestamp", "entrypoint",
                     "sessionId", "cwd", "uuid"},
                    top)) {
      ++stats_.malformed;
      return;
    }
    if (Text(top[kType]) != "assistant") return;
    std::string_view msg[3];
    if (!js::ObjectFields(top[kMessage], {"id", "model", "usage"}, msg)) return;
    if (msg[2].empty() || msg[2].front() != '{') return;
    OnUsage(top, msg, sink);
  }

  std::string SaveState() const override { return ""; }
  bool LoadState(std::string_view) override {
    Reset();
    return true;
  }
  void Reset() override { seen_.clear(); }

 private:
  // top: type, message, requestId, requestRef, timestamp, entrypoint, sessionId, cwd, uuid.
  // msg: id, model, usage.
  void OnUsage(const std::string_view* top, const std::string_view* msg, const ParseSink& sink) {
    std::string id = Text(msg[0]);
    std::string request = Text(top[2]);
    if (request.empty()) request = Text(top[3]);
    if (id.empty()) id = Text(top[8]);
    auto when = ParseIsoTime(Text(top[4]));
    std::string_view u[6];
    if (id.empty() || !when ||
        !js::ObjectFields(msg[2],
                          {"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                           "output_tokens", "output_tokens_details", "cache_creation"},
                          u)) {
      ++stats_.malformed;
      return;
    }
    UsageEvent e;
    e.key = "claude:" + id + ":" + request;
    if (!seen_.insert(e.key).second) {
      ++stats_.repeats;
      return;
    }
    e.tokens.input = Count(u[0]);
    e.tokens.cache_write = Count(u[1]);
    e.tokens.cache_read = Count(u[2]);
    e.tokens.output = Count(u[3]);
    std::string_view d[1];
    if (js::ObjectFields(u[4], {"thinking_tokens"}, d)) e.tokens.reasoning = Count(d[0]);
    std::string_view c[1];
    if (js::ObjectFields(u[5], {"ephemeral_1h_input_tokens"}, c)) e.tokens.cache_write_1h = Count(c[0]);
    e.tokens.total = e.tokens.input + e.tokens.cache_write + e.tokens.cache_read + e.tokens.output;
    if (e.tokens.input < 0 || e.tokens.cache_write < 0 || e.tokens.cache_read < 0 ||
        e.tokens.output < 0 || e.tokens.reasoning < 0 || e.tokens.cache_write_1h < 0) {
      ++stats_.malformed;
      return;
    }
    if (e.tokens.total == 0) return;  // synthetic / error messages carry zeros
    e.provider = ProviderKind::kClaude;
    e.unix_ms = *when;
    e.client = Text(top[5]);
    e.model = Text(msg[1]);
    e.session = Text(top[6]);
    e.cwd = Text(top[7]);
    ++stats_.events;
    if (sink.events) sink.events->push_back(std::move(e));
  }

  std::string path_;
  std::unordered_set<std::string> seen_;
};

}  // namespace

std::unique_ptr<LineParser> MakeClaudeParser(std::string path) {
  return std::make_unique<ClaudeParser>(std::move(path));
}

}  // namespace dormant::meter
