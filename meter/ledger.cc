#include "meter/ledger.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "meter/sqlite_util.h"

namespace dormant::meter {

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS usage (
  id            INTEGER PRIMARY KEY,
  key           TEXT NOT NULL UNIQUE,
  ts_ms         INTEGER NOT NULL,
  provider      TEXT NOT NULL,
  client        TEXT NOT NULL,
  model         TEXT NOT NULL,
  session       TEXT NOT NULL,
  cwd           TEXT NOT NULL,
  input         INTEGER NOT NULL,
  cached_input  INTEGER NOT NULL,
  output        INTEGER NOT NULL,
  reasoning     INTEGER NOT NULL,
  cache_write   INTEGER NOT NULL,
  cache_read    INTEGER NOT NULL,
  cache_write_1h INTEGER NOT NULL,
  total         INTEGER NOT NULL,
  credits       REAL NOT NULL,
  usd           REAL NOT NULL,
  unknown_price INTEGER NOT NULL,
  fast          INTEGER NOT NULL,
  pid           INTEGER,
  idle          INTEGER,
  source        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_ts ON usage(ts_ms);
CREATE TABLE IF NOT EXISTS files (
  path   TEXT PRIMARY KEY,
  kind   TEXT NOT NULL,
  dev    INTEGER NOT NULL,
  ino    INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  state  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_limits (
  id                       INTEGER PRIMARY KEY CHECK (id = 1),
  ts_ms                    INTEGER NOT NULL,
  session                  TEXT NOT NULL,
  primary_used_percent     REAL,
  primary_window_minutes   INTEGER,
  primary_resets_at        INTEGER,
  secondary_used_percent   REAL,
  secondary_window_minutes INTEGER,
  secondary_resets_at      INTEGER,
  credits_balance          REAL
);
CREATE TABLE IF NOT EXISTS intervals (
  id       INTEGER PRIMARY KEY,
  kind     TEXT NOT NULL,
  subject  TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  end_ms   INTEGER,
  reason   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS intervals_start ON intervals(start_ms);
)sql";

Expected<void> MakeDirs(const std::string& dir) {
  if (dir.empty()) return {};
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) return {};
  size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    if (auto ok = MakeDirs(dir.substr(0, slash)); !ok) return ok;
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Error{errno, "mkdir(" + dir + "): " + std::strerror(errno)};
  return {};
}

}  // namespace

struct Ledger::Statements {
  Stmt insert_usage, upsert_file, files, upsert_limits, latest_limits, open_interval,
      close_interval, close_open, intervals, totals, totals_provider, samples;
};

std::string Ledger::DefaultPath() {
  const char* state = std::getenv("XDG_STATE_HOME");
  std::string base;
  if (state && *state == '/') {
    base = state;
  } else {
    const char* home = std::getenv("HOME");
    base = std::string(home ? home : "") + "/.local/state";
  }
  return base + "/dormant/ledger.sqlite";
}

Ledger::Ledger(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

Ledger::~Ledger() {
  stmts_.reset();  // statements before the connection
  sqlite3_close(db_);
}

Expected<std::unique_ptr<Ledger>> Ledger::Open(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos) {
    if (auto ok = MakeDirs(path.substr(0, slash)); !ok) return ok.error();
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Error{5, "open ledger " + path + ": " + msg};
  }
  std::unique_ptr<Ledger> ledger(new Ledger(db, path));
  if (auto ok = ledger->Migrate(); !ok) return Error{5, "ledger " + path + ": " + ok.error().message};
  return ledger;
}

Expected<void> Ledger::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Error{5, msg};
  }
  return {};
}

Expected<void> Ledger::Migrate() {
  sqlite3_busy_timeout(db_, 5000);
  // WAL: readers (a report) never block the follower. synchronous=NORMAL
  // keeps every committed transaction across a crash of this process; only a
  // power loss can take back the last ones (which a re-read then restores).
  // Checkpoints (the only fsyncs) every 4000 pages rather than 1000; a 4 MiB
  // page cache.
  if (auto ok = Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                     "PRAGMA wal_autocheckpoint=4000; PRAGMA cache_size=-4096;");
      !ok)
    return ok;
  if (auto ok = Exec("BEGIN IMMEDIATE"); !ok) return ok;
  Stmt version(db_, "PRAGMA user_version");
  int64_t v = version.Step() == SQLITE_ROW ? version.Int(0) : 0;
  if (v > kSchemaVersion) {
    (void)Exec("ROLLBACK");
    return Error{5, "schema version " + std::to_string(v) + " is newer than this dormant"};
  }
  if (auto ok = Exec(kSchema); !ok) {
    (void)Exec("ROLLBACK");
    return ok;
  }
  if (auto ok = Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()); !ok) {
    (void)Exec("ROLLBACK");
    return ok;
  }
  if (auto ok = Exec("COMMIT"); !ok) return ok;

  stmts_ = std::make_unique<Statements>();
  Statements& s = *stmts_;
  s.insert_usage = Stmt(db_,
      "INSERT OR IGNORE INTO usage (key, ts_ms, provider, client, model, session, cwd, input, "
      "cached_input, output, reasoning, cache_write, cache_read, total, credits, usd, "
      "unknown_price, fast, pid, idle, source, cache_write_1h) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  s.upsert_file = Stmt(db_,
      "INSERT OR REPLACE INTO files (path, kind, dev, ino, offset, state) VALUES (?,?,?,?,?,?)");
  s.files = Stmt(db_, "SELECT path, kind, dev, ino, offset, state FROM files");
  s.upsert_limits = Stmt(db_,
      "INSERT INTO rate_limits VALUES (1,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
      "ts_ms=excluded.ts_ms, session=excluded.session, "
      "primary_used_percent=excluded.primary_used_percent, "
      "primary_window_minutes=excluded.primary_window_minutes, "
      "primary_resets_at=excluded.primary_resets_at, "
      "secondary_used_percent=excluded.secondary_used_percent, "
      "secondary_window_minutes=excluded.secondary_window_minutes, "
      "secondary_resets_at=excluded.secondary_resets_at, credits_balance=excluded.credits_balance "
      "WHERE excluded.ts_ms >= rate_limits.ts_ms");
  s.latest_limits = Stmt(db_,
      "SELECT ts_ms, session, primary_used_percent, primary_window_minutes, primary_resets_at, "
      "secondary_used_percent, secondary_window_minutes, secondary_resets_at, credits_balance "
      "FROM rate_limits WHERE id = 1");
  s.open_interval = Stmt(db_,
      "INSERT INTO intervals (kind, subject, start_ms, end_ms, reason) VALUES (?,?,?,NULL,?)");
  s.close_interval = Stmt(db_, "UPDATE intervals SET end_ms = ? WHERE id = ? AND end_ms IS NULL");
  s.close_open = Stmt(db_, "UPDATE intervals SET end_ms = max(start_ms, ?) WHERE end_ms IS NULL");
  s.intervals = Stmt(db_,
      "SELECT id, kind, subject, start_ms, end_ms, reason FROM intervals "
      "WHERE end_ms IS NULL OR end_ms >= ? ORDER BY start_ms, id");
  const char* totals =
      "SELECT count(*), ifnull(sum(input),0), ifnull(sum(cached_input),0), ifnull(sum(output),0), "
      "ifnull(sum(reasoning),0), ifnull(sum(cache_write),0), ifnull(sum(cache_read),0), "
      "ifnull(sum(total),0), ifnull(sum(credits),0), ifnull(sum(usd),0), "
      "ifnull(sum(unknown_price),0), ifnull(sum(cache_write_1h),0) FROM usage WHERE ts_ms >= ?";
  s.totals = Stmt(db_, totals);
  s.totals_provider = Stmt(db_, (std::string(totals) + " AND provider = ?").c_str());
  s.samples = Stmt(db_,
      "SELECT ts_ms, credits, usd, total, pid IS NOT NULL, idle FROM usage WHERE ts_ms >= ? "
      "ORDER BY ts_ms");
  for (Stmt* st : {&s.insert_usage, &s.upsert_file, &s.files, &s.upsert_limits, &s.latest_limits,
                   &s.open_interval, &s.close_interval, &s.close_open, &s.intervals, &s.totals,
                   &s.totals_provider, &s.samples}) {
    if (!st->ok()) return Error{5, st->error()};
  }
  return {};
}

Expected<Ledger::CommitResult> Ledger::Commit(const std::vector<LedgerEvent>& events,
                                              const std::vector<FileCursor>& cursors,
                                              const std::vector<RateLimits>& limits) {
  bool own = !in_transaction_;
  if (own) {
    if (auto ok = Begin(); !ok) return ok.error();
  }
  auto r = Write(events, cursors, limits);
  if (!r) {
    (void)Exec("ROLLBACK");
    in_transaction_ = false;
    return r.error();
  }
  if (own) {
    if (auto ok = End(); !ok) return ok.error();
  }
  return r;
}

Expected<void> Ledger::Begin() {
  if (in_transaction_) return {};
  if (auto ok = Exec("BEGIN IMMEDIATE"); !ok) return Error{5, "begin: " + ok.error().message};
  in_transaction_ = true;
  return {};
}

Expected<void> Ledger::End() {
  if (!in_transaction_) return {};
  in_transaction_ = false;
  if (auto ok = Exec("COMMIT"); !ok) {
    (void)Exec("ROLLBACK");
    return Error{5, "commit: " + ok.error().message};
  }
  return {};
}

Expected<Ledger::CommitResult> Ledger::Write(const std::vector<LedgerEvent>& events,
                                             const std::vector<FileCursor>& cursors,
                                             const std::vector<RateLimits>& limits) {
  CommitResult result;
  auto fail = [&](const Error& e) -> Expected<CommitResult> { return e; };
  Statements& s = *stmts_;
  for (size_t i = 0; i < events.size(); ++i) {
    const LedgerEvent& e = events[i];
    const UsageEvent& u = e.usage;
    Stmt& st = s.insert_usage.Reset();
    st.Bind(1, u.key).Bind(2, u.unix_ms).Bind(3, ToString(u.provider)).Bind(4, u.client);
    st.Bind(5, u.model).Bind(6, u.session).Bind(7, u.cwd);
    st.Bind(8, u.tokens.input).Bind(9, u.tokens.cached_input).Bind(10, u.tokens.output);
    st.Bind(11, u.tokens.reasoning).Bind(12, u.tokens.cache_write).Bind(13, u.tokens.cache_read);
    st.Bind(14, u.tokens.total).Bind(15, e.cost.credits).Bind(16, e.cost.usd);
    st.Bind(17, int64_t{e.cost.unknown_model}).Bind(18, int64_t{u.fast});
    if (e.pid) st.Bind(19, int64_t{*e.pid}); else st.BindNull(19);
    if (e.idle) st.Bind(20, int64_t{*e.idle}); else st.BindNull(20);
    st.Bind(21, e.source).Bind(22, u.tokens.cache_write_1h);
    if (auto ok = st.Run(); !ok) return fail(ok.error());
    if (sqlite3_changes(db_) == 1) result.inserted.push_back(i);
    else ++result.duplicates;
  }
  for (const FileCursor& c : cursors) {
    Stmt& st = s.upsert_file.Reset();
    st.Bind(1, c.path).Bind(2, ToString(c.kind)).Bind(3, static_cast<int64_t>(c.dev));
    st.Bind(4, static_cast<int64_t>(c.ino)).Bind(5, c.offset).Bind(6, c.state);
    if (auto ok = st.Run(); !ok) return fail(ok.error());
  }
  const RateLimits* latest = nullptr;
  for (const RateLimits& r : limits)
    if (!latest || r.unix_ms >= latest->unix_ms) latest = &r;
  if (latest) {
    Stmt& st = s.upsert_limits.Reset();
    st.Bind(1, latest->unix_ms).Bind(2, latest->session);
    st.Bind(3, latest->primary_used_percent).Bind(4, latest->primary_window_minutes);
    st.Bind(5, latest->primary_resets_at).Bind(6, latest->secondary_used_percent);
    st.Bind(7, latest->secondary_window_minutes).Bind(8, latest->secondary_resets_at);
    st.Bind(9, latest->credits_balance);
    if (auto ok = st.Run(); !ok) return fail(ok.error());
  }
  return result;
}

Expected<std::vector<FileCursor>> Ledger::Cursors() {
  std::vector<FileCursor> out;
  Stmt& st = stmts_->files.Reset();
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    FileCursor c;
    c.path = st.Text(0);
    c.kind = ParseProviderKind(st.Text(1)).value_or(ProviderKind::kCodex);
    c.dev = static_cast<uint64_t>(st.Int(2));
    c.ino = static_cast<uint64_t>(st.Int(3));
    c.offset = st.Int(4);
    c.state = st.Text(5);
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return st.Err("files");
  return out;
}

Expected<std::optional<RateLimits>> Ledger::LatestRateLimits() {
  Stmt& st = stmts_->latest_limits.Reset();
  int rc = st.Step();
  if (rc == SQLITE_DONE) return std::optional<RateLimits>();
  if (rc != SQLITE_ROW) return st.Err("rate_limits");
  RateLimits r;
  r.unix_ms = st.Int(0);
  r.session = st.Text(1);
  auto real = [&](int c) { return st.Null(c) ? std::optional<double>() : st.Real(c); };
  auto integer = [&](int c) { return st.Null(c) ? std::optional<int64_t>() : st.Int(c); };
  r.primary_used_percent = real(2);
  r.primary_window_minutes = integer(3);
  r.primary_resets_at = integer(4);
  r.secondary_used_percent = real(5);
  r.secondary_window_minutes = integer(6);
  r.secondary_resets_at = integer(7);
  r.credits_balance = real(8);
  return std::optional<RateLimits>(r);
}

Expected<int64_t> Ledger::OpenInterval(std::string_view kind, std::string_view subject,
                                       int64_t start_ms, std::string_view reason) {
  Stmt& st = stmts_->open_interval.Reset();
  st.Bind(1, kind).Bind(2, subject).Bind(3, start_ms).Bind(4, reason);
  if (auto ok = st.Run(); !ok) return ok.error();
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Expected<void> Ledger::CloseInterval(int64_t id, int64_t end_ms) {
  Stmt& st = stmts_->close_interval.Reset();
  st.Bind(1, end_ms).Bind(2, id);
  return st.Run();
}

Expected<void> Ledger::CloseOpenIntervals(int64_t end_ms) {
  Stmt& st = stmts_->close_open.Reset();
  st.Bind(1, end_ms);
  return st.Run();
}

Expected<std::vector<Interval>> Ledger::Intervals(int64_t since_ms) {
  std::vector<Interval> out;
  Stmt& st = stmts_->intervals.Reset();
  st.Bind(1, since_ms);
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    Interval iv;
    iv.id = st.Int(0);
    iv.kind = st.Text(1);
    iv.subject = st.Text(2);
    iv.start_ms = st.Int(3);
    if (!st.Null(4)) iv.end_ms = st.Int(4);
    iv.reason = st.Text(5);
    out.push_back(std::move(iv));
  }
  if (rc != SQLITE_DONE) return st.Err("intervals");
  return out;
}

Expected<Ledger::Totals> Ledger::TotalsSince(int64_t since_ms, std::optional<ProviderKind> provider) {
  Stmt& st = provider ? stmts_->totals_provider.Reset() : stmts_->totals.Reset();
  st.Bind(1, since_ms);
  if (provider) st.Bind(2, ToString(*provider));
  if (st.Step() != SQLITE_ROW) return st.Err("totals");
  Totals t;
  t.events = st.Int(0);
  t.tokens = {st.Int(1), st.Int(2), st.Int(3), st.Int(4), st.Int(5), st.Int(6), st.Int(7), st.Int(11)};
  t.credits = st.Real(8);
  t.usd = st.Real(9);
  t.unknown_price = st.Int(10);
  return t;
}

Expected<std::vector<enforcer::SpendSample>> Ledger::SamplesSince(int64_t since_ms) {
  std::vector<enforcer::SpendSample> out;
  Stmt& st = stmts_->samples.Reset();
  st.Bind(1, since_ms);
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    enforcer::SpendSample s;
    s.unix_ms = st.Int(0);
    s.spend = {st.Real(1), st.Real(2), st.Int(3)};
    s.supervised = st.Int(4) != 0;
    if (!st.Null(5)) s.idle = st.Int(5) != 0;
    out.push_back(s);
  }
  if (rc != SQLITE_DONE) return st.Err("samples");
  return out;
}

}  // namespace dormant::meter
