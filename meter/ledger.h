// The ledger: a SQLite database in WAL mode that keeps every usage event once
// (a unique key per event), the per-file read offsets of the log follower,
// the latest rate limits, and idle/active and suspend/resume intervals.
//
// Commit() writes one batch (events + the file offsets they were read up to)
// in one transaction: after a kill -9 either the batch and its offsets are
// there or neither is, so a restart re-reads exactly what was not committed,
// and a re-read event is ignored by its key. See docs/metering.md for the schema.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "enforcer/budget.h"
#include "enforcer/expected.h"
#include "meter/usage.h"

struct sqlite3;

namespace dormant::meter {

/// A usage event with what the ledger adds to it.
struct LedgerEvent {
  UsageEvent usage;
  enforcer::Cost cost;
  std::optional<int> pid;    // the supervised provider process, when known
  std::optional<bool> idle;  // the user was idle then; nullopt = not known
  std::string source;        // the log file it came from
};

/// How far a log file has been read, and the parser's state at that point.
struct FileCursor {
  std::string path;
  ProviderKind kind = ProviderKind::kCodex;
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t offset = 0;   // bytes consumed: always just after a '\n'
  std::string state;    // LineParser::SaveState()
};

/// An interval of some kind: "idle", "active", "suspended", "lockout"...
struct Interval {
  int64_t id = 0;
  std::string kind;
  std::string subject;  // "user", or a provider ("codex 1234")
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;  // open while nullopt
  std::string reason;
};

/// The 16 bytes the ledger stores for an event's key (UsageEvent::key): a
/// 128-bit hash, so the unique index holds 16 bytes instead of a ~60-byte
/// string. Two different keys collide with probability 2^-128; among n keys
/// the odds of any collision are about n^2 / 2^129 (1e-21 at a billion).
std::array<uint8_t, 16> EventKeyHash(std::string_view key);

class Ledger {
 public:
  /// Opens (creating it and its directory, mode 0700) the ledger at `path`.
  static Expected<std::unique_ptr<Ledger>> Open(const std::string& path);
  /// $XDG_STATE_HOME/dormant/ledger.sqlite, else ~/.local/state/dormant/ledger.sqlite.
  static std::string DefaultPath();

  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  struct CommitResult {
    std::vector<size_t> inserted;  // indices into `events` of the ones that were new
    size_t duplicates = 0;         // events whose key was already there
  };
  /// One transaction: insert `events` (ignoring known keys), store `cursors`,
  /// remember the latest of `limits`.
  Expected<CommitResult> Commit(const std::vector<LedgerEvent>& events,
                                const std::vector<FileCursor>& cursors,
                                const std::vector<RateLimits>& limits = {});

  /// A longer transaction for bulk imports: Commit() calls between Begin()
  /// and End() join it, so a year of logs is written once rather than batch
  /// by batch. A crash before End() loses the whole transaction (and the
  /// offsets with it), never part of it.
  Expected<void> Begin();
  Expected<void> End();
  /// Copies what the WAL holds into the database file now (a passive
  /// checkpoint: it waits for no reader), so closing has little left to do.
  Expected<void> Checkpoint();

  Expected<std::vector<FileCursor>> Cursors();
  Expected<std::optional<RateLimits>> LatestRateLimits();

  /// Intervals: the supervisor opens one when a state begins and closes it
  /// when it ends. CloseOpenIntervals() closes those a crash left open.
  Expected<int64_t> OpenInterval(std::string_view kind, std::string_view subject, int64_t start_ms,
                                 std::string_view reason);
  Expected<void> CloseInterval(int64_t id, int64_t end_ms);
  Expected<void> CloseOpenIntervals(int64_t end_ms);
  Expected<std::vector<Interval>> Intervals(int64_t since_ms);

  struct Totals {
    int64_t events = 0;
    TokenCounts tokens;
    double credits = 0;
    double usd = 0;
    int64_t unknown_price = 0;  // events priced by the fallback
  };
  /// Totals of events with time >= since_ms (all when 0), optionally of one provider.
  Expected<Totals> TotalsSince(int64_t since_ms, std::optional<ProviderKind> provider = {});
  /// Priced events since `since_ms`, in time order, to seed a BudgetTracker.
  Expected<std::vector<enforcer::SpendSample>> SamplesSince(int64_t since_ms);

  /// The raw handle, for report queries (meter/report.cc). Events are in
  /// `events`, their strings in `names` (see docs/metering.md).
  sqlite3* db() { return db_; }
  const std::string& path() const { return path_; }

 private:
  Ledger(sqlite3* db, std::string path);
  Expected<void> Migrate();
  Expected<void> MigrateFromV1();
  // The id of `text` in `names`, adding it when new. `slot` remembers the
  // last string of one field, which repeats across a file's events.
  struct Slot {
    std::string text;
    int64_t id = 0;
  };
  Expected<int64_t> Intern(Slot& slot, std::string_view text);
  std::optional<int64_t> FindName(std::string_view text);
  void Rollback();  // and forget ids handed out in the rolled-back transaction
  Expected<CommitResult> Write(const std::vector<LedgerEvent>& events,
                               const std::vector<FileCursor>& cursors,
                               const std::vector<RateLimits>& limits);
  bool in_transaction_ = false;
  Expected<void> Exec(const char* sql);

  sqlite3* db_;
  std::string path_;
  struct Statements;
  std::unique_ptr<Statements> stmts_;
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Every name this connection has seen: ids are never reused or changed once
  // committed, so only a rollback invalidates entries (Rollback() clears it).
  std::unordered_map<std::string, int64_t, NameHash, std::equal_to<>> names_;
  Slot provider_, client_, model_, session_, cwd_, source_;
};

}  // namespace dormant::meter
