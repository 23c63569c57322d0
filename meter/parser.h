// Incremental parsers of providers' JSONL logs. A parser is fed complete lines
// (without the newline) of one file, in order; it keeps what it needs between
// lines (Codex: the session, client, model and last cumulative totals) and can
// save and load that state so a restart resumes mid-file.
//
// A line that is not JSON, or a usage line missing its fields, is skipped and
// counted in stats().malformed. Lines that cannot carry usage are recognised
// by a cheap look at their bytes and not JSON-parsed at all (that is where the
// ingestion speed comes from); they are still checked to be one JSON object
// ("{...}"), so a cut line is counted wherever it is.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "meter/usage.h"

namespace dormant::meter {

/// Where a parser puts what it found.
struct ParseSink {
  std::vector<UsageEvent>* events = nullptr;
  std::vector<RateLimits>* limits = nullptr;  // may be null: rate limits are dropped
};

class LineParser {
 public:
  virtual ~LineParser() = default;
  /// One complete line of the file (no trailing '\n'; a trailing '\r' is fine).
  virtual void ParseLine(std::string_view line, const ParseSink& sink) = 0;
  /// Opaque state to resume after the last line fed ("" when there is none).
  virtual std::string SaveState() const = 0;
  /// Restores SaveState() output; false (and a fresh state) when unreadable.
  virtual bool LoadState(std::string_view state) = 0;
  /// Forgets everything learnt (the file was truncated or replaced).
  virtual void Reset() = 0;
  ParseStats& stats() { return stats_; }
  const ParseStats& stats() const { return stats_; }

 protected:
  ParseStats stats_;
};

/// A parser for a Codex rollout file (`path` gives the session id when the
/// session_meta line was never seen).
std::unique_ptr<LineParser> MakeCodexParser(std::string path);
/// A parser for a Claude Code project log.
std::unique_ptr<LineParser> MakeClaudeParser(std::string path);
std::unique_ptr<LineParser> MakeParser(ProviderKind kind, std::string path);

/// Feeds every complete line of `bytes` to `parser`; returns how many bytes were
/// consumed (up to and including the last '\n'). The rest is a partial line.
size_t FeedLines(LineParser& parser, std::string_view bytes, const ParseSink& sink);

/// Cheap structural check used for lines not worth a full parse: starts with
/// '{' and ends with '}' (ignoring surrounding blanks).
bool LooksLikeJsonObject(std::string_view line);

}  // namespace dormant::meter
