#include "meter/ingest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <optional>
#include <mutex>
#include <thread>

#include "platform/unique_fd.h"

namespace dormant::meter {

namespace {

constexpr size_t kChunk = 256 << 10;         // read size; also the smallest buffer
constexpr size_t kBatchEvents = 256;         // commit a batch at least this often (memory)
constexpr size_t kBatchCursors = 512;

}  // namespace

// The bulk mode's writer: commits batches in order on its own thread, into
// the transaction BeginBulk() opened, ending and reopening it where a batch
// asks (every commit_bytes of log read).
class Ingestor::Writer {
 public:
  struct Batch {
    std::vector<LedgerEvent> events;
    std::vector<FileCursor> cursors;
    std::vector<RateLimits> limits;
    bool cycle = false;  // commit the transaction after this batch, open the next
  };

  explicit Writer(Ledger* ledger) : ledger_(ledger), thread_([this] { Run(); }) {}
  ~Writer() { Finish(); }

  // Queues a batch (waits while one is queued); the first error so far, if any.
  Expected<void> Push(Batch batch) {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return queue_.size() < 1 || error_; });
    if (error_) return *error_;
    queue_.push_back(std::move(batch));
    work_.notify_one();
    return {};
  }

  // Writes what is queued and stops the thread; the first error, if any.
  Expected<void> Finish() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
      work_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
    if (error_) return *error_;
    return {};
  }

  size_t duplicates() const { return duplicates_; }  // after Finish()
  size_t committed() const { return committed_; }

 private:
  void Run() {
    for (;;) {
      Batch b;
      {
        std::unique_lock lock(mu_);
        work_.wait(lock, [&] { return !queue_.empty() || done_; });
        if (queue_.empty()) return;
        b = std::move(queue_.front());
        queue_.pop_front();
        room_.notify_one();
      }
      Expected<void> ok = Write(b);
      if (!ok) {
        std::lock_guard lock(mu_);
        error_ = ok.error();
        queue_.clear();
        room_.notify_all();
        return;
      }
    }
  }

  Expected<void> Write(const Batch& b) {
    auto r = ledger_->Commit(b.events, b.cursors, b.limits);
    if (!r) return r.error();
    duplicates_ += r->duplicates;
    committed_ += r->inserted.size();
    if (b.cycle) {
      // Commit, and checkpoint here, beside the parsing, rather than all at
      // the close.
      if (auto ok = ledger_->End(); !ok) return ok;
      if (auto ok = ledger_->Checkpoint(); !ok) return ok;
      if (auto ok = ledger_->Begin(); !ok) return ok;
    }
    return {};
  }

  Ledger* ledger_;
  std::mutex mu_;
  std::condition_variable work_, room_;
  std::deque<Batch> queue_;
  std::optional<Error> error_;
  bool done_ = false;
  size_t duplicates_ = 0, committed_ = 0;
  std::thread thread_;  // last: starts once the rest is built
};

unsigned ImportThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : std::min(n, 2u);
}

Ingestor::Ingestor(Ledger* ledger, enforcer::PriceTable prices)
    : ledger_(ledger), prices_(std::move(prices)) {}

Ingestor::~Ingestor() {
  if (writer_) (void)EndBulk();
}

Expected<void> Ingestor::LoadCursors() {
  auto cursors = ledger_->Cursors();
  if (!cursors) return cursors.error();
  for (FileCursor& c : *cursors) {
    std::string path = c.path;
    files_[path].cursor = std::move(c);
  }
  return {};
}

std::vector<std::pair<std::string, ProviderKind>> Ingestor::KnownFiles() const {
  std::vector<std::pair<std::string, ProviderKind>> out;
  for (const auto& [path, f] : files_) out.emplace_back(path, f.cursor.kind);
  return out;
}

Ingestor::File& Ingestor::FileFor(const std::string& path, ProviderKind kind) {
  auto [it, fresh] = files_.try_emplace(path);
  if (fresh) {
    it->second.cursor.path = path;
    it->second.cursor.kind = kind;
  }
  return it->second;
}

LineParser& Ingestor::ParserFor(File& f) {
  if (!f.parser) {
    f.parser = MakeParser(f.cursor.kind, f.cursor.path);
    if (!f.parser->LoadState(f.cursor.state)) {
      // Unreadable state: start the file over; keys keep it from counting twice.
      f.cursor.offset = 0;
    }
  }
  return *f.parser;
}

void Ingestor::Release(const std::string& path) {
  auto it = files_.find(path);
  if (it != files_.end()) it->second.parser.reset();
}

void Ingestor::Queue(Lane& lane, File& f, std::vector<UsageEvent>& events,
                     std::vector<RateLimits>& limits) {
  for (UsageEvent& u : events) {
    LedgerEvent e;
    const bool codex = u.provider == ProviderKind::kCodex;
    if (!lane.price || u.model != lane.price_model || codex != lane.price_codex) {
      lane.price = &enforcer::MatchPrice(prices_, u.model, codex, &lane.price_unknown);
      lane.price_model = u.model;
      lane.price_codex = codex;
    }
    e.cost = enforcer::PriceWith(prices_, *lane.price, lane.price_unknown, u.tokens, codex, u.fast);
    e.usage = std::move(u);
    e.source = f.cursor.path;
    if (annotate_) annotate_(e);
    lane.pending.push_back(std::move(e));
  }
  events.clear();
  for (RateLimits& r : limits) lane.limits.push_back(std::move(r));
  limits.clear();
  f.cursor.state = f.parser->SaveState();
  lane.cursors[f.cursor.path] = f.cursor;
}

Expected<Ingestor::FileResult> Ingestor::IngestFile(const std::string& path, ProviderKind kind,
                                                    bool flush) {
  auto r = Read(lane_, FileFor(path, kind));
  stats_ += lane_.stats;
  lane_.stats = {};
  if (!r) return r;
  if (flush || lane_.pending.size() >= kBatchEvents || lane_.cursors.size() >= kBatchCursors) {
    if (auto ok = FlushLane(lane_); !ok) return ok.error();
  }
  return r;
}

Ingestor::ImportResult Ingestor::Import(const std::vector<std::pair<std::string, ProviderKind>>& files,
                                        unsigned threads) {
  ImportResult result;
  if (!writer_ || threads <= 1) {
    for (const auto& [path, kind] : files) {
      auto r = IngestFile(path, kind, /*flush=*/false);
      Release(path);
      if (r) ++result.files;
      else result.errors.push_back(r.error());
    }
    if (auto ok = Flush(); !ok) result.errors.push_back(ok.error());
    return result;
  }
  // Every file's entry made here, before the threads: each thread then
  // touches only the entries it was handed (a map's nodes never move).
  std::vector<File*> entries;
  entries.reserve(files.size());
  for (const auto& [path, kind] : files) entries.push_back(&FileFor(path, kind));
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;  // guards result
  auto work = [&](Lane& lane) {
    for (size_t i; !stop && (i = next++) < entries.size();) {
      File& f = *entries[i];
      auto r = Read(lane, f);
      f.parser.reset();
      Expected<void> flushed;
      if (lane.pending.size() >= kBatchEvents || lane.cursors.size() >= kBatchCursors)
        flushed = FlushLane(lane);
      std::lock_guard lock(mu);
      if (r) ++result.files;
      else result.errors.push_back(r.error());
      if (!flushed) {
        result.errors.push_back(flushed.error());
        stop = true;
      }
    }
    if (auto ok = FlushLane(lane); !ok) {
      std::lock_guard lock(mu);
      result.errors.push_back(ok.error());
    }
  };
  std::vector<Lane> lanes(threads - 1);
  std::vector<std::thread> running;
  for (Lane& lane : lanes) running.emplace_back(work, std::ref(lane));
  work(lane_);
  for (std::thread& t : running) t.join();
  stats_ += lane_.stats;
  lane_.stats = {};
  for (Lane& lane : lanes) stats_ += lane.stats;
  return result;
}

Expected<Ingestor::FileResult> Ingestor::Read(Lane& lane, File& f) {
  const std::string& path = f.cursor.path;
  FileResult result;
  platform::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Error{errno, "open(" + path + "): " + std::strerror(errno)};
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Error{errno, "fstat(" + path + "): " + std::strerror(errno)};
  LineParser& parser = ParserFor(f);
  FileCursor& c = f.cursor;
  bool known = c.dev != 0 || c.ino != 0;
  if (known && (c.dev != static_cast<uint64_t>(st.st_dev) || c.ino != static_cast<uint64_t>(st.st_ino))) {
    result.rotated = true;
  } else if (st.st_size < c.offset) {
    result.truncated = true;
  }
  if (result.rotated || result.truncated) {
    c.offset = 0;
    parser.Reset();
  }
  c.dev = static_cast<uint64_t>(st.st_dev);
  c.ino = static_cast<uint64_t>(st.st_ino);

  std::string& buf = lane.buf;
  if (buf.size() < kChunk) buf.resize(kChunk);
  std::vector<UsageEvent> events;
  std::vector<RateLimits> limits;
  ParseSink sink{&events, &limits};
  size_t have = 0;  // bytes in buf not consumed yet (a partial line)
  off_t read_at = c.offset;
  for (;;) {
    if (have == buf.size()) buf.resize(buf.size() * 2);  // a line longer than the buffer
    ssize_t n = ::pread(fd.get(), buf.data() + have, buf.size() - have, read_at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{errno, "read(" + path + "): " + std::strerror(errno)};
    }
    if (n == 0) break;
    read_at += n;
    have += static_cast<size_t>(n);
    size_t used = FeedLines(parser, std::string_view(buf.data(), have), sink);
    if (used > 0) {
      c.offset += static_cast<int64_t>(used);
      result.bytes += used;
      bulk_bytes_ += used;
      result.events += events.size();
      Queue(lane, f, events, limits);
      std::memmove(buf.data(), buf.data() + used, have - used);
      have -= used;
      if (lane.pending.size() >= kBatchEvents) {
        if (auto ok = FlushLane(lane); !ok) return ok.error();
      }
    }
  }
  lane.stats += parser.stats();
  parser.stats() = {};
  if (result.rotated || result.truncated || result.bytes == 0) lane.cursors[path] = c;
  if (buf.size() > 4 * kChunk) {
    buf.resize(kChunk);
    buf.shrink_to_fit();
  }
  return result;
}

Expected<void> Ingestor::BeginBulk(size_t commit_bytes) {
  if (bulk_) return {};
  if (auto ok = Flush(); !ok) return ok;
  if (auto ok = ledger_->Begin(); !ok) return ok;
  bulk_ = true;
  bulk_commit_bytes_ = commit_bytes;
  bulk_bytes_ = 0;
  writer_ = std::make_unique<Writer>(ledger_);
  return {};
}

Expected<void> Ingestor::EndBulk() {
  if (!bulk_) return {};
  auto flushed = Flush();
  auto finished = writer_->Finish();
  duplicates_ += writer_->duplicates();
  committed_ += writer_->committed();
  writer_.reset();
  bulk_ = false;
  // A failed commit has rolled its transaction back already (Ledger::Commit).
  if (!flushed) return flushed;
  if (!finished) return finished;
  return ledger_->End();
}

Expected<void> Ingestor::Flush() { return FlushLane(lane_); }

Expected<void> Ingestor::FlushLane(Lane& lane) {
  if (lane.pending.empty() && lane.cursors.empty() && lane.limits.empty()) return {};
  std::vector<FileCursor> cursors;
  cursors.reserve(lane.cursors.size());
  for (auto& [path, c] : lane.cursors) cursors.push_back(c);
  if (writer_) {
    Writer::Batch b{std::move(lane.pending), std::move(cursors), std::move(lane.limits), false};
    lane.pending.clear();
    lane.limits.clear();
    lane.cursors.clear();
    // Two lanes may both see the mark: one of them cycles.
    if (bulk_bytes_ >= bulk_commit_bytes_ && bulk_bytes_.exchange(0) >= bulk_commit_bytes_) b.cycle = true;
    return writer_->Push(std::move(b));
  }
  auto r = ledger_->Commit(lane.pending, cursors, lane.limits);
  if (!r) return r.error();
  duplicates_ += r->duplicates;
  committed_ += r->inserted.size();
  std::vector<LedgerEvent> fresh;
  if (on_committed_) {
    fresh.reserve(r->inserted.size());
    for (size_t i : r->inserted) fresh.push_back(std::move(lane.pending[i]));
  }
  std::vector<RateLimits> limits = std::move(lane.limits);
  lane.pending.clear();
  lane.limits.clear();
  lane.cursors.clear();
  if (on_committed_ && !fresh.empty()) on_committed_(fresh);
  if (on_limits_)
    for (const RateLimits& l : limits) on_limits_(l);
  return {};
}

}  // namespace dormant::meter
