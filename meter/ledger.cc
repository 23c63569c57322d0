#include "meter/ledger.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "meter/sqlite_util.h"

namespace dormant::meter {

namespace {

constexpr int kSchemaVersion = 2;

// Version 2. Every repeated string (provider, client, model, session, cwd,
// source path) is stored once in `names` and referenced by id, and the event
// key is its 16-byte EventKeyHash: an event row is ~60 bytes instead of ~300,
// and its unique index entry ~25 instead of ~70. The view `usage` shows the
// events with their strings, for the sqlite3 shell.
constexpr const char* kTables = R"sql(
CREATE TABLE IF NOT EXISTS names (
  id   INTEGER PRIMARY KEY,
  text TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS events (
  id             INTEGER PRIMARY KEY,
  ts_ms          INTEGER NOT NULL,
  provider       INTEGER NOT NULL,
  client         INTEGER NOT NULL,
  model          INTEGER NOT NULL,
  session        INTEGER NOT NULL,
  cwd            INTEGER NOT NULL,
  source         INTEGER NOT NULL,
  input          INTEGER NOT NULL,
  cached_input   INTEGER NOT NULL,
  output         INTEGER NOT NULL,
  reasoning      INTEGER NOT NULL,
  cache_write    INTEGER NOT NULL,
  cache_read     INTEGER NOT NULL,
  cache_write_1h INTEGER NOT NULL,
  total          INTEGER NOT NULL,
  credits        REAL NOT NULL,
  usd            REAL NOT NULL,
  unknown_price  INTEGER NOT NULL,
  fast           INTEGER NOT NULL,
  pid            INTEGER,
  idle           INTEGER,
  key            BLOB NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts_ms);
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

constexpr const char* kView = R"sql(
CREATE VIEW IF NOT EXISTS usage AS
SELECT e.id, e.ts_ms, strftime('%Y-%m-%dT%H:%M:%fZ', e.ts_ms / 1000.0, 'unixepoch') AS time,
       p.text AS provider, c.text AS client, m.text AS model, s.text AS session, w.text AS cwd,
       e.input, e.cached_input, e.output, e.reasoning, e.cache_write, e.cache_read,
       e.cache_write_1h, e.total, e.credits, e.usd, e.unknown_price, e.fast, e.pid, e.idle,
       f.text AS source, hex(e.key) AS key_hash
FROM events e
JOIN names p ON p.id = e.provider JOIN names c ON c.id = e.client JOIN names m ON m.id = e.model
JOIN names s ON s.id = e.session JOIN names w ON w.id = e.cwd JOIN names f ON f.id = e.source;
)sql";

// Version 1 kept every string in each row: `usage(id, key TEXT UNIQUE, ts_ms,
// provider, client, model, session, cwd, <tokens>, credits, usd,
// unknown_price, fast, pid, idle, source)`. Its rows move to `events` with
// the same ids; files, rate_limits and intervals are unchanged.
constexpr const char* kFromV1 = R"sql(
INSERT OR IGNORE INTO names (text)
  SELECT provider FROM usage UNION SELECT client FROM usage UNION SELECT model FROM usage
  UNION SELECT session FROM usage UNION SELECT cwd FROM usage UNION SELECT source FROM usage;
INSERT INTO events (id, ts_ms, provider, client, model, session, cwd, source, input, cached_input,
                    output, reasoning, cache_write, cache_read, cache_write_1h, total, credits, usd,
                    unknown_price, fast, pid, idle, key)
  SELECT u.id, u.ts_ms, (SELECT id FROM names WHERE text = u.provider),
         (SELECT id FROM names WHERE text = u.client), (SELECT id FROM names WHERE text = u.model),
         (SELECT id FROM names WHERE text = u.session), (SELECT id FROM names WHERE text = u.cwd),
         (SELECT id FROM names WHERE text = u.source), u.input, u.cached_input, u.output,
         u.reasoning, u.cache_write, u.cache_read, u.cache_write_1h, u.total, u.credits, u.usd,
         u.unknown_price, u.fast, u.pid, u.idle, dormant_key_hash(u.key)
  FROM usage u ORDER BY u.id;
DROP TABLE usage;
)sql";

uint64_t Load64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];  // little-endian on every host
  return v;
}

uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t Fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

void KeyHashFunction(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const unsigned char* t = sqlite3_value_text(argv[0]);
  std::string_view key(t ? reinterpret_cast<const char*>(t) : "",
                       static_cast<size_t>(sqlite3_value_bytes(argv[0])));
  std::array<uint8_t, 16> h = EventKeyHash(key);
  sqlite3_result_blob(ctx, h.data(), 16, SQLITE_TRANSIENT);
}

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

// The 128-bit Murmur3 (x64) construction: two 64-bit lanes over 16-byte
// blocks, each lane finished with a 64-bit avalanche mix. Not for adversaries
// (the keys come from one's own logs), only for an even spread. Stored, so
// never change it without a schema migration.
std::array<uint8_t, 16> EventKeyHash(std::string_view key) {
  const auto* p = reinterpret_cast<const unsigned char*>(key.data());
  const size_t n = key.size();
  constexpr uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
  uint64_t h1 = 0, h2 = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint64_t k1 = Load64(p + i), k2 = Load64(p + i + 8);
    h1 ^= Rotl(k1 * c1, 31) * c2;
    h1 = (Rotl(h1, 27) + h2) * 5 + 0x52dce729;
    h2 ^= Rotl(k2 * c2, 33) * c1;
    h2 = (Rotl(h2, 31) + h1) * 5 + 0x38495ab5;
  }
  uint64_t k1 = 0, k2 = 0;
  for (size_t j = n - i; j > 8; --j) k2 = (k2 << 8) | p[i + j - 1];
  for (size_t j = std::min<size_t>(n - i, 8); j > 0; --j) k1 = (k1 << 8) | p[i + j - 1];
  if (n - i > 8) h2 ^= Rotl(k2 * c2, 33) * c1;
  if (n - i > 0) h1 ^= Rotl(k1 * c1, 31) * c2;
  h1 ^= n;
  h2 ^= n;
  h1 += h2;
  h2 += h1;
  h1 = Fmix(h1);
  h2 = Fmix(h2);
  h1 += h2;
  h2 += h1;
  std::array<uint8_t, 16> out;
  for (int b = 0; b < 8; ++b) {
    out[b] = static_cast<uint8_t>(h1 >> (56 - 8 * b));  // big-endian: hex(key) reads h1 h2
    out[8 + b] = static_cast<uint8_t>(h2 >> (56 - 8 * b));
  }
  return out;
}

// Events are inserted kChunk rows per statement: one statement per event
// costs more in sqlite3_step's fixed work (cursors opened and closed, the
// statement halted) than the row itself.
constexpr int kChunk = 32;
constexpr int kEventColumns = 22;

struct Ledger::Statements {
  Stmt insert_event, insert_events, max_id, find_key, find_name, insert_name, upsert_file, files,
      upsert_limits, latest_limits, open_interval, close_interval, close_open, intervals,
      totals[2][2], samples;
  // Key hashes bound SQLITE_STATIC to the insert statements: must outlive them.
  uint8_t keys[kChunk][16];
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
  // Checkpoints (the only fsyncs) every 4000 pages rather than 1000, and the
  // WAL file is cut back to that size after one; a 1 MiB page cache (4 MiB
  // was no faster, and `dormant report --import` of the Codex year peaked at
  // 16.7 MiB with 2 MiB, 15.7 with 1 MiB: bench_meter_ingest and /usr/bin/time).
  if (auto ok = Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                     "PRAGMA wal_autocheckpoint=4000; PRAGMA journal_size_limit=16777216; "
                     "PRAGMA cache_size=-1024;");
      !ok)
    return ok;
  if (auto ok = Exec("BEGIN IMMEDIATE"); !ok) return ok;
  auto fail = [&](Expected<void> e) {
    (void)Exec("ROLLBACK");
    return e;
  };
  int64_t v = 0;
  {
    Stmt version(db_, "PRAGMA user_version");
    if (version.Step() == SQLITE_ROW) v = version.Int(0);
  }
  if (v > kSchemaVersion)
    return fail(Error{5, "schema version " + std::to_string(v) + " is newer than this dormant"});
  if (v != kSchemaVersion) {
    if (auto ok = Exec(kTables); !ok) return fail(ok);
    if (v == 1) {
      if (auto ok = MigrateFromV1(); !ok) return fail(Error{5, "migrating from version 1: " + ok.error().message});
    }
    if (auto ok = Exec(kView); !ok) return fail(ok);
    if (auto ok = Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()); !ok)
      return fail(ok);
  }
  if (auto ok = Exec("COMMIT"); !ok) return fail(ok);

  stmts_ = std::make_unique<Statements>();
  Statements& s = *stmts_;
  const std::string insert =
      "INSERT OR IGNORE INTO events (ts_ms, provider, client, model, session, cwd, source, input, "
      "cached_input, output, reasoning, cache_write, cache_read, cache_write_1h, total, credits, "
      "usd, unknown_price, fast, pid, idle, key) VALUES ";
  const std::string row = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  std::string rows = row;
  for (int i = 1; i < kChunk; ++i) rows += "," + row;
  s.insert_event = Stmt(db_, (insert + row).c_str());
  s.insert_events = Stmt(db_, (insert + rows).c_str());
  s.max_id = Stmt(db_, "SELECT ifnull(max(id), 0) FROM events");
  s.find_key = Stmt(db_, "SELECT id FROM events WHERE key = ?");
  s.find_name = Stmt(db_, "SELECT id FROM names WHERE text = ?");
  s.insert_name = Stmt(db_, "INSERT INTO names (text) VALUES (?) ON CONFLICT (text) DO NOTHING");
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
  // [by time index][of one provider]. Without the index ("+ts_ms": SQLite
  // then scans the table) for all events: a range lookup per row would be
  // slower than reading the table in order.
  for (int indexed = 0; indexed < 2; ++indexed) {
    for (int one = 0; one < 2; ++one) {
      std::string sql =
          "SELECT count(*), ifnull(sum(input),0), ifnull(sum(cached_input),0), "
          "ifnull(sum(output),0), ifnull(sum(reasoning),0), ifnull(sum(cache_write),0), "
          "ifnull(sum(cache_read),0), ifnull(sum(total),0), ifnull(sum(credits),0), "
          "ifnull(sum(usd),0), ifnull(sum(unknown_price),0), ifnull(sum(cache_write_1h),0) "
          "FROM events WHERE ";
      sql += indexed ? "ts_ms >= ?1" : "+ts_ms >= ?1";
      if (one) sql += " AND provider = ?2";
      s.totals[indexed][one] = Stmt(db_, sql.c_str());
    }
  }
  s.samples = Stmt(db_,
      "SELECT ts_ms, credits, usd, total, pid IS NOT NULL, idle FROM events WHERE ts_ms >= ? "
      "ORDER BY ts_ms");
  for (Stmt* st : {&s.insert_event, &s.insert_events, &s.max_id, &s.find_key, &s.find_name, &s.insert_name, &s.upsert_file, &s.files,
                   &s.upsert_limits, &s.latest_limits, &s.open_interval, &s.close_interval,
                   &s.close_open, &s.intervals, &s.totals[0][0], &s.totals[0][1], &s.totals[1][0],
                   &s.totals[1][1], &s.samples}) {
    if (!st->ok()) return Error{5, st->error()};
  }
  return {};
}

Expected<void> Ledger::MigrateFromV1() {
  if (sqlite3_create_function_v2(db_, "dormant_key_hash", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                 nullptr, KeyHashFunction, nullptr, nullptr, nullptr) != SQLITE_OK)
    return Error{5, std::string("dormant_key_hash: ") + sqlite3_errmsg(db_)};
  return Exec(kFromV1);
}

void Ledger::Rollback() {
  (void)Exec("ROLLBACK");
  in_transaction_ = false;
  names_.clear();
  for (Slot* s : {&provider_, &client_, &model_, &session_, &cwd_, &source_}) *s = Slot{};
}

Expected<int64_t> Ledger::Intern(Slot& slot, std::string_view text) {
  if (slot.id != 0 && slot.text == text) return slot.id;
  int64_t id;
  if (auto it = names_.find(text); it != names_.end()) {
    id = it->second;
  } else {
    // Not in this connection's cache: most likely new (a new session, a new
    // log file), so insert first; only when the table has it already (from
    // before this process, or from another one) look it up.
    Stmt& ins = stmts_->insert_name.Reset();
    ins.Bind(1, text);
    if (auto ok = ins.Run(); !ok) return ok.error();
    if (sqlite3_changes(db_) == 1) {
      id = sqlite3_last_insert_rowid(db_);
      names_.emplace(std::string(text), id);
    } else if (auto found = FindName(text)) {
      id = *found;
    } else {
      return Error{5, "names: " + std::string(text) + " neither inserted nor found"};
    }
  }
  slot.text.assign(text);
  slot.id = id;
  return id;
}

std::optional<int64_t> Ledger::FindName(std::string_view text) {
  if (auto it = names_.find(text); it != names_.end()) return it->second;
  Stmt& f = stmts_->find_name.Reset();
  f.Bind(1, text);
  std::optional<int64_t> id;
  if (f.Step() == SQLITE_ROW) id = f.Int(0);
  sqlite3_reset(f.get());
  if (id) names_.emplace(std::string(text), *id);
  return id;
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
    Rollback();
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
    Rollback();
    return Error{5, "commit: " + ok.error().message};
  }
  return {};
}

Expected<void> Ledger::Checkpoint() {
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error{5, std::string("checkpoint: ") + sqlite3_errmsg(db_)};
  return {};
}

Expected<Ledger::CommitResult> Ledger::Write(const std::vector<LedgerEvent>& events,
                                             const std::vector<FileCursor>& cursors,
                                             const std::vector<RateLimits>& limits) {
  CommitResult result;
  result.inserted.reserve(events.size());
  Statements& s = *stmts_;
  // Binds event `e` as row `row` of `st` (parameters row * 22 + 1...), with
  // the C API directly: every parameter is set each time, nothing is copied.
  auto bind = [&](sqlite3_stmt* st, int row, const LedgerEvent& e) -> Expected<void> {
    const UsageEvent& u = e.usage;
    int64_t ids[6];
    int n = 0;
    for (auto [slot, text] : {std::pair<Slot*, std::string_view>{&provider_, ToString(u.provider)},
                              {&client_, u.client}, {&model_, u.model}, {&session_, u.session},
                              {&cwd_, u.cwd}, {&source_, e.source}}) {
      auto id = Intern(*slot, text);
      if (!id) return id.error();
      ids[n++] = *id;
    }
    std::array<uint8_t, 16> key = EventKeyHash(u.key);
    std::memcpy(s.keys[row], key.data(), 16);
    const int p = row * kEventColumns;
    sqlite3_bind_int64(st, p + 1, u.unix_ms);
    for (int k = 0; k < 6; ++k) sqlite3_bind_int64(st, p + 2 + k, ids[k]);
    const TokenCounts& t = u.tokens;
    const int64_t counts[] = {t.input,       t.cached_input, t.output,         t.reasoning,
                              t.cache_write, t.cache_read,   t.cache_write_1h, t.total};
    for (int k = 0; k < 8; ++k) sqlite3_bind_int64(st, p + 8 + k, counts[k]);
    sqlite3_bind_double(st, p + 16, e.cost.credits);
    sqlite3_bind_double(st, p + 17, e.cost.usd);
    sqlite3_bind_int64(st, p + 18, e.cost.unknown_model);
    sqlite3_bind_int64(st, p + 19, u.fast);
    if (e.pid) sqlite3_bind_int64(st, p + 20, *e.pid); else sqlite3_bind_null(st, p + 20);
    if (e.idle) sqlite3_bind_int64(st, p + 21, *e.idle); else sqlite3_bind_null(st, p + 21);
    sqlite3_bind_blob(st, p + 22, s.keys[row], 16, SQLITE_STATIC);
    return {};
  };
  size_t i = 0;
  if (events.size() >= static_cast<size_t>(kChunk)) {
    // Which rows of a chunk were new: all of them when it changed kChunk
    // rows, none when 0; otherwise (a partial re-read) each key is looked up:
    // new rows have ids above the largest before the chunk (rowids are
    // handed out in increasing order), and of two equal keys in one chunk
    // only the first went in.
    int64_t max_id = 0;
    {
      Stmt& m = s.max_id.Reset();
      if (m.Step() != SQLITE_ROW) return m.Err("max id");
      max_id = m.Int(0);
      sqlite3_reset(m.get());
    }
    sqlite3_stmt* st = s.insert_events.get();
    for (; i + kChunk <= events.size(); i += kChunk) {
      sqlite3_reset(st);
      for (int r = 0; r < kChunk; ++r) {
        if (auto ok = bind(st, r, events[i + r]); !ok) return ok.error();
      }
      if (sqlite3_step(st) != SQLITE_DONE) return s.insert_events.Err("insert events");
      int changed = sqlite3_changes(db_);
      if (changed == kChunk) {
        for (int r = 0; r < kChunk; ++r) result.inserted.push_back(i + r);
      } else if (changed == 0) {
        result.duplicates += kChunk;
      } else {
        int64_t seen[kChunk];
        for (int r = 0; r < kChunk; ++r) {
          Stmt& f = s.find_key.Reset();
          sqlite3_bind_blob(f.get(), 1, s.keys[r], 16, SQLITE_STATIC);
          if (f.Step() != SQLITE_ROW) return f.Err("find key");
          seen[r] = f.Int(0);
          sqlite3_reset(f.get());
          if (seen[r] > max_id && std::find(seen, seen + r, seen[r]) == seen + r)
            result.inserted.push_back(i + r);
          else
            ++result.duplicates;
        }
      }
      if (changed > 0) max_id = sqlite3_last_insert_rowid(db_);
    }
    sqlite3_reset(st);
  }
  sqlite3_stmt* st = s.insert_event.get();
  for (; i < events.size(); ++i) {
    sqlite3_reset(st);
    if (auto ok = bind(st, 0, events[i]); !ok) return ok.error();
    if (sqlite3_step(st) != SQLITE_DONE) return s.insert_event.Err("insert event");
    if (sqlite3_changes(db_) == 1) result.inserted.push_back(i);
    else ++result.duplicates;
  }
  sqlite3_reset(st);
  for (const FileCursor& c : cursors) {
    Stmt& st = s.upsert_file.Reset();
    st.Bind(1, c.path).Bind(2, ToString(c.kind)).Bind(3, static_cast<int64_t>(c.dev));
    st.Bind(4, static_cast<int64_t>(c.ino)).Bind(5, c.offset).Bind(6, c.state);
    if (auto ok = st.Run(); !ok) return ok.error();
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
    if (auto ok = st.Run(); !ok) return ok.error();
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
  Totals t;
  std::optional<int64_t> provider_id;
  if (provider) {
    provider_id = FindName(ToString(*provider));
    if (!provider_id) return t;  // never seen: no events
  }
  Stmt& st = stmts_->totals[since_ms > 0][provider.has_value()].Reset();
  st.Bind(1, since_ms);
  if (provider_id) st.Bind(2, *provider_id);
  if (st.Step() != SQLITE_ROW) return st.Err("totals");
  t.events = st.Int(0);
  t.tokens = {st.Int(1), st.Int(2), st.Int(3), st.Int(4), st.Int(5), st.Int(6), st.Int(7), st.Int(11)};
  t.credits = st.Real(8);
  t.usd = st.Real(9);
  t.unknown_price = st.Int(10);
  sqlite3_reset(st.get());
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
