// Reads providers' log files from where the ledger says it stopped, parses
// the new complete lines, prices the usage and commits it with the new
// offsets. Used by the live follower (one file at a time, as it grows), by
// `dormant report --import` and the benchmark (many files, batched).
//
// Per file it keeps a cursor (device, inode, offset, parser state). A file
// whose inode changed was replaced (rotation): it is read from the start. A
// file shorter than the offset was truncated: read from the start too. In
// both cases events already in the ledger are ignored by their keys. A partial
// last line is left unread until its newline arrives.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "enforcer/budget.h"
#include "enforcer/expected.h"
#include "meter/ledger.h"
#include "meter/parser.h"

namespace dormant::meter {

/// Reading threads for an import: the machine's cores but one (the writer's),
/// at least 1, at most 4.
unsigned ImportThreads();

class Ingestor {
 public:
  Ingestor(Ledger* ledger, enforcer::PriceTable prices);
  ~Ingestor();

  /// Loads every file's cursor from the ledger (call once, before reading).
  Expected<void> LoadCursors();

  /// Called for each new event before it is committed: set pid and idle.
  void SetAnnotate(std::function<void(LedgerEvent&)> fn) { annotate_ = std::move(fn); }
  /// Called after each commit with the events the ledger did not have yet.
  void SetOnCommitted(std::function<void(const std::vector<LedgerEvent>&)> fn) {
    on_committed_ = std::move(fn);
  }
  /// Called with the rate limits read (in file order), after their commit.
  void SetOnRateLimits(std::function<void(const RateLimits&)> fn) { on_limits_ = std::move(fn); }

  struct FileResult {
    size_t bytes = 0;        // complete-line bytes read this time
    size_t events = 0;       // usage events parsed
    bool truncated = false;  // started over: the file shrank
    bool rotated = false;    // started over: a new inode at this path
  };
  /// Reads what is new in `path`. With `flush`, commits before returning;
  /// otherwise the batch is committed once big enough, or by Flush().
  Expected<FileResult> IngestFile(const std::string& path, ProviderKind kind, bool flush = true);
  /// Commits the pending batch.
  Expected<void> Flush();

  /// Reads what is new in each of `files`, in bulk mode (after BeginBulk),
  /// with `threads` reading threads (the calling one among them) feeding the
  /// writer: files are handed out one at a time, each read whole by one
  /// thread. A file that cannot be read is skipped with its error kept; the
  /// first writer error stops everything. The annotate callback then runs on
  /// those threads. Without bulk mode, or with one thread, it is IngestFile()
  /// on each file in turn.
  struct ImportResult {
    size_t files = 0;           // files read
    std::vector<Error> errors;  // files that could not be read, and a writer error
  };
  ImportResult Import(const std::vector<std::pair<std::string, ProviderKind>>& files,
                      unsigned threads);
  /// Bulk mode (import, benchmark): batches go into one long transaction,
  /// committed every `commit_bytes` of log read and by EndBulk(), and are
  /// written by a second thread while this one reads and parses on (a
  /// pipeline: the wall time is the longer of the two, not their sum; one
  /// batch waits at most, so memory stays bounded). Until EndBulk() the ledger
  /// belongs to that thread: the caller must not use it. Only the annotate
  /// callback is called in bulk mode. An error of the writer is returned by
  /// the next Flush() or IngestFile(), and by EndBulk().
  Expected<void> BeginBulk(size_t commit_bytes = 32u << 20);
  Expected<void> EndBulk();
  /// Drops the in-memory parser of `path` (its state stays in the cursor).
  void Release(const std::string& path);

  const ParseStats& stats() const { return stats_; }
  size_t duplicates() const { return duplicates_; }
  size_t committed() const { return committed_; }
  bool Known(const std::string& path) const { return files_.count(path) != 0; }
  /// Files with a cursor (read at least once, now or in an earlier run).
  std::vector<std::pair<std::string, ProviderKind>> KnownFiles() const;

 private:
  struct File {
    FileCursor cursor;
    std::unique_ptr<LineParser> parser;
  };
  class Writer;  // the bulk mode's writing thread
  // What one reading thread keeps: its buffer, the batch it builds, its
  // counters, the price entry of its last model.
  struct Lane {
    std::string buf;
    std::vector<LedgerEvent> pending;
    std::vector<RateLimits> limits;
    std::map<std::string, FileCursor> cursors;
    ParseStats stats;
    const enforcer::ModelPrice* price = nullptr;
    std::string price_model;
    bool price_codex = false;
    bool price_unknown = false;
  };
  Expected<FileResult> Read(Lane& lane, File& f);
  Expected<void> FlushLane(Lane& lane);
  File& FileFor(const std::string& path, ProviderKind kind);
  LineParser& ParserFor(File& f);
  void Queue(Lane& lane, File& f, std::vector<UsageEvent>& events, std::vector<RateLimits>& limits);

  Ledger* ledger_;
  enforcer::PriceTable prices_;
  std::function<void(LedgerEvent&)> annotate_;
  std::function<void(const std::vector<LedgerEvent>&)> on_committed_;
  std::function<void(const RateLimits&)> on_limits_;
  std::map<std::string, File> files_;
  Lane lane_;  // the calling thread's
  ParseStats stats_;
  size_t duplicates_ = 0;
  bool bulk_ = false;
  std::unique_ptr<Writer> writer_;
  size_t bulk_commit_bytes_ = 0;
  std::atomic<size_t> bulk_bytes_{0};
  size_t committed_ = 0;
};

}  // namespace dormant::meter
