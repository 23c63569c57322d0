// libFuzzer target for the meter's JSON scanner and log parsers
// (tools/fuzz-meter.sh builds and runs it under ASan and UBSan).
//
// Checks, beyond "no crash, no leak":
// - the scanner against a strict parser: an object nlohmann-json accepts is
//   accepted by json_scan::Extract and Fields, with the same values at the
//   paths asked; a prefix of such an object (a cut line) is refused;
// - the parsers: fed the input as log lines, no count comes out negative and
//   a saved state loads back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "meter/json_scan.h"
#include "meter/parser.h"

namespace js = dormant::meter::json_scan;
using dormant::meter::ProviderKind;

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "meter_fuzzer: %s\n", what);
    __builtin_trap();
  }
}

const nlohmann::json* At(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* v = &j;
  for (const char* k : path) {
    if (!v->is_object()) return nullptr;
    auto it = v->find(k);
    if (it == v->end()) return nullptr;
    v = &*it;
  }
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  // The scanner.
  static const js::Paths paths{"type", "payload.type", "payload.info.total_token_usage", "message.usage",
                               "a.b.c", "a"};
  std::string_view out[6];
  bool ours = js::Extract(text, paths, out);
  auto strict = nlohmann::json::parse(text, nullptr, false);
  // nlohmann keeps the last of duplicate keys, the scanner the last too; it
  // also accepts what the scanner does not check (literals), so only one way.
  if (!strict.is_discarded() && strict.is_object() && text.find('\0') == std::string_view::npos) {
    Check(ours, "a valid object was refused");
    const std::initializer_list<const char*> want[] = {
        {"type"}, {"payload", "type"}, {"payload", "info", "total_token_usage"}, {"message", "usage"},
        {"a", "b", "c"}, {"a"}};
    for (size_t i = 0; i < 6; ++i) {
      const nlohmann::json* v = At(strict, want[i]);
      if (!v) continue;  // absent (or under a non-object): the scanner may leave it empty
      auto got = nlohmann::json::parse(out[i], nullptr, false);
      Check(!got.is_discarded() && got == *v, "a value differs from the strict parser's");
    }
    std::string_view f[2];
    Check(js::Fields(text, {"type", "a"}, f), "Fields refused a valid object");
    // Every prefix that cuts the closing brace off is refused.
    size_t end = text.find_last_of('}');
    for (size_t cut = 1; cut <= end; cut += 1 + cut / 8)
      Check(!js::Extract(text.substr(0, cut), paths, out), "a cut object was accepted");
  }
  for (std::string_view raw : out) {
    (void)js::String(raw);
    (void)js::Int(raw);
    (void)js::Number(raw);
  }

  // The parsers, on the input as lines.
  for (ProviderKind kind : {ProviderKind::kCodex, ProviderKind::kClaude}) {
    auto parser = dormant::meter::MakeParser(kind, "/fuzz/rollout-2026-01-01T00-00-00-x.jsonl");
    std::vector<dormant::meter::UsageEvent> events;
    std::vector<dormant::meter::RateLimits> limits;
    std::string lines(text);
    lines += '\n';
    dormant::meter::FeedLines(*parser, lines, dormant::meter::ParseSink{&events, &limits});
    for (const auto& e : events) {
      Check(e.tokens.input >= 0 && e.tokens.output >= 0 && e.tokens.cached_input >= 0 &&
                e.tokens.cache_read >= 0 && e.tokens.cache_write >= 0 && e.tokens.reasoning >= 0,
            "a negative count");
      Check(!e.key.empty(), "an event without a key");
    }
    auto again = dormant::meter::MakeParser(kind, "/fuzz/x.jsonl");
    Check(again->LoadState(parser->SaveState()), "a saved state did not load back");
  }
  return 0;
}
