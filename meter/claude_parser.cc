// Claude Code project logs (~/.claude/projects/<project>/<session>.jsonl).
//
// Each assistant line carries `message.usage` of the API request that made it;
// a response with several content blocks is written as several lines with the
// same message id and request, each repeating the usage. So the key is message
// id + request id (older versions write `requestId`, 2.1.3xx writes
// `requestRef`), and only the first line of a key counts.
#include <nlohmann/json.hpp>

#include <cstring>
#include <string>
#include <unordered_set>

#include "meter/parser.h"

namespace dormant::meter {
namespace {

using nlohmann::json;

int64_t Int(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_number()) return 0;
  return it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
}

std::string Str(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

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
    json j = json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++stats_.malformed;
      return;
    }
    if (Str(j, "type") != "assistant") return;
    auto msg = j.find("message");
    if (msg == j.end() || !msg->is_object()) return;
    auto usage = msg->find("usage");
    if (usage == msg->end() || !usage->is_object()) return;
    OnUsage(j, *msg, *usage, sink);
  }

  std::string SaveState() const override { return ""; }
  bool LoadState(std::string_view) override {
    Reset();
    return true;
  }
  void Reset() override { seen_.clear(); }

 private:
  void OnUsage(const json& j, const json& msg, const json& u, const ParseSink& sink) {
    std::string id = Str(msg, "id");
    std::string request = Str(j, "requestId");
    if (request.empty()) request = Str(j, "requestRef");
    if (id.empty()) id = Str(j, "uuid");
    auto when = ParseIsoTime(Str(j, "timestamp"));
    if (id.empty() || !when) {
      ++stats_.malformed;
      return;
    }
    UsageEvent e;
    e.key = "claude:" + id + ":" + request;
    if (!seen_.insert(e.key).second) {
      ++stats_.repeats;
      return;
    }
    e.tokens.input = Int(u, "input_tokens");
    e.tokens.cache_write = Int(u, "cache_creation_input_tokens");
    e.tokens.cache_read = Int(u, "cache_read_input_tokens");
    e.tokens.output = Int(u, "output_tokens");
    if (auto c = u.find("cache_creation"); c != u.end() && c->is_object())
      e.tokens.cache_write_1h = Int(*c, "ephemeral_1h_input_tokens");
    if (auto d = u.find("output_tokens_details"); d != u.end() && d->is_object())
      e.tokens.reasoning = Int(*d, "thinking_tokens");
    e.tokens.total = e.tokens.input + e.tokens.cache_write + e.tokens.cache_read + e.tokens.output;
    if (e.tokens.total == 0) return;  // synthetic / error messages carry zeros
    e.provider = ProviderKind::kClaude;
    e.unix_ms = *when;
    e.client = Str(j, "entrypoint");
    e.model = Str(msg, "model");
    e.session = Str(j, "sessionId");
    e.cwd = Str(j, "cwd");
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
