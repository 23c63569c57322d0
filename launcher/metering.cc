#include "launcher/metering.h"

#include <spdlog/spdlog.h>

#include <time.h>

#include <cstdlib>

#include "meter/attribution.h"
#include "meter/follower.h"
#include "meter/ingest.h"
#include "meter/ledger.h"

namespace dormant::launcher {
namespace {

enforcer::WallTime WallNow() {
  int64_t now = meter::NowUnixMs();
  return {now, meter::LocalUtcOffset(now)};
}

// The machine's zone, DST rules included, so calendar windows end at the exact
// instant of local midnight. localtime_r reads the zone once; the boundary
// timer's tzset() picks up a changed TZ or /etc/localtime.
enforcer::TimeZone LocalZone() {
  return [](int64_t unix_ms) { return meter::LocalUtcOffset(unix_ms); };
}

// The boundary timer fires at least this often, so a change of the machine's
// zone (or of its rules) moves the windows within the hour.
constexpr uint64_t kZoneCheckMs = 3'600'000;

std::optional<meter::ProviderKind> KindOfExe(const std::string& exe) {
  if (exe == "codex") return meter::ProviderKind::kCodex;
  if (exe == "claude") return meter::ProviderKind::kClaude;
  return std::nullopt;
}

// How far back the ledger must be read to refill every budget window.
int64_t SeedSince(const enforcer::BudgetPolicy& b, enforcer::WallTime now) {
  int64_t since = now.unix_ms;
  for (const auto& budget : b.budgets) {
    since = std::min(since, enforcer::WindowAt(budget.window, now.unix_ms, LocalZone()).start_ms);
  }
  return since;
}

}  // namespace

Metering::Metering(uv_loop_t* loop, Hooks hooks) : loop_(loop), hooks_(std::move(hooks)) {}

Metering::~Metering() = default;

Expected<void> Metering::Start(const enforcer::BudgetPolicy& budgets) {
  const char* override_path = std::getenv("DORMANT_LEDGER");
  std::string path = override_path && *override_path ? override_path : meter::Ledger::DefaultPath();
  auto ledger = meter::Ledger::Open(path);
  if (!ledger) return Error{ledger.error().code, "ledger " + path + ": " + ledger.error().message};
  ledger_ = std::move(*ledger);
  ledger_->CloseOpenIntervals(meter::NowUnixMs());
  attributor_ = std::make_unique<meter::Attributor>();
  tracker_ = std::make_unique<enforcer::BudgetTracker>(budgets, LocalZone());
  Seed();

  ingestor_ = std::make_unique<meter::Ingestor>(ledger_.get(), budgets.prices);
  ingestor_->SetAnnotate([this](meter::LedgerEvent& e) {
    e.pid = attributor_->Attribute(e.usage, e.source);
    e.idle = hooks_.user_idle();
  });
  ingestor_->SetOnCommitted([this](const std::vector<meter::LedgerEvent>& events) {
    std::vector<enforcer::BudgetNotice> notices;
    for (const auto& e : events) {
      ++events_;
      enforcer::SpendSample s;
      s.unix_ms = e.usage.unix_ms;
      s.spend = {e.cost.credits, e.cost.usd, e.usage.tokens.total};
      s.supervised = e.pid.has_value();
      s.idle = e.idle;
      spdlog::info("usage: {} {} {} tokens, {:.4g} credits, ${:.4g}{}{}", meter::ToString(e.usage.provider),
                   e.usage.model, e.usage.tokens.total, e.cost.credits, e.cost.usd,
                   e.pid ? " (pid " + std::to_string(*e.pid) + ")" : " (other client)",
                   e.idle.value_or(false) ? " while the user was idle" : "");
      for (auto& n : tracker_->Add(s, WallNow())) notices.push_back(std::move(n));
    }
    Handle(notices);
  });
  ingestor_->SetOnRateLimits([this](const meter::RateLimits& l) {
    Handle(tracker_->SetPlanUsedPercent(l.MaxUsedPercent()));
  });
  if (auto r = ingestor_->LoadCursors(); !r) spdlog::warn("ledger cursors: {}", r.error().message);

  // A log root that does not exist yet is looked for every 500 ms, so the
  // first usage of a fresh CODEX_HOME is metered (and budgets act) within a second.
  follower_ = std::make_unique<meter::LogFollower>(loop_, ingestor_.get(), 500);
  follower_->SetOnError([](const Error& e) { spdlog::warn("meter: {}", e.message); });
  for (auto& root : meter::DefaultLogRoots()) {
    roots_.insert(root.dir);
    if (auto r = follower_->AddRoot(root); !r) spdlog::warn("meter: {}: {}", root.dir, r.error().message);
  }
  boundary_ = new uv_timer_t;
  uv_timer_init(loop_, boundary_);
  boundary_->data = this;
  ArmBoundary();
  spdlog::info("metering into {} ({} budget{})", ledger_->path(), budgets.budgets.size(),
               budgets.budgets.size() == 1 ? "" : "s");
  return {};
}

void Metering::Seed() {
  // Spend already in the ledger counts toward the current windows, so a
  // restart does not hand out a fresh budget.
  auto now = WallNow();
  auto samples = ledger_->SamplesSince(SeedSince(tracker_->policy(), now));
  if (!samples) {
    spdlog::warn("ledger history: {}", samples.error().message);
    return;
  }
  std::vector<enforcer::BudgetNotice> notices;
  for (const auto& s : *samples) {
    for (auto& n : tracker_->Add(s, now)) {
      if (n.kind == enforcer::BudgetNotice::Kind::kExhausted) notices.push_back(std::move(n));
    }
  }
  // An exhausted budget stays exhausted across restarts; warnings already
  // given are not repeated.
  Handle(notices);
}

void Metering::SetBudgets(const enforcer::BudgetPolicy& budgets) {
  if (!ledger_) return;
  Reseed(budgets, "budgets changed by reload");
}

void Metering::Reseed(enforcer::BudgetPolicy budgets, const std::string& why) {
  bool was_locked = tracker_->LockedOut() || tracker_->AnyExhausted();
  tracker_ = std::make_unique<enforcer::BudgetTracker>(std::move(budgets), LocalZone());
  Seed();
  if (was_locked && !tracker_->AnyExhausted()) {
    hooks_.feed(enforcer::Event::BudgetReset(why + ": none is spent"));
  }
  ArmBoundary();
}

void Metering::Handle(const std::vector<enforcer::BudgetNotice>& notices) {
  using K = enforcer::BudgetNotice::Kind;
  for (const auto& n : notices) {
    spdlog::log(n.kind == K::kWarn ? spdlog::level::warn : spdlog::level::info, "budget {}: {}: {}",
                n.budget, enforcer::ToString(n.kind), n.reason);
    switch (n.kind) {
      case K::kWarn:
        hooks_.feed(enforcer::Event::BudgetWarn(n.reason));
        break;
      case K::kExhausted:
      case K::kPlanExceeded:
        hooks_.feed(enforcer::Event::BudgetExhausted(
            n.reason, n.on_exhausted == enforcer::OnExhausted::kKill, n.lockout));
        OpenInterval("lockout", n.budget, n.reason);
        break;
      case K::kReset:
      case K::kPlanCleared:
        CloseInterval("lockout", n.budget);
        if (!tracker_->AnyExhausted()) hooks_.feed(enforcer::Event::BudgetReset(n.reason));
        break;
      case K::kIdleExceeded:
        hooks_.feed(enforcer::Event::IdleSpendExceeded(n.reason));
        break;
    }
  }
  ArmBoundary();
}

void Metering::ArmBoundary() {
  if (!boundary_) return;
  auto now = WallNow();
  auto next = tracker_->NextBoundary(now);
  if (!next) {
    uv_timer_stop(boundary_);
    return;
  }
  // NextBoundary is the exact instant; 1 ms past it the new window holds.
  uint64_t wait = static_cast<uint64_t>(std::max<int64_t>(0, *next - now.unix_ms)) + 1;
  uv_timer_start(boundary_, [](uv_timer_t* t) {
    auto* self = static_cast<Metering*>(t->data);
    tzset();  // re-read TZ and /etc/localtime: the machine may have changed zone
    auto now = WallNow();
    if (self->tracker_->WindowsMoved(now)) {
      // The spend counted belongs to the old zone's windows: count the new
      // ones from the ledger instead.
      spdlog::info("budget: the time zone changed: budget windows re-read from the ledger");
      self->Reseed(self->tracker_->policy(), "the time zone changed");
      return;
    }
    self->Handle(self->tracker_->Advance(now));
  }, std::min(wait, kZoneCheckMs), 0);
}

void Metering::AddProvider(int pid, const std::string& exe) {
  if (!attributor_) return;
  auto kind = KindOfExe(exe);
  if (!kind) return;
  attributor_->AddProvider(pid, *kind);
  // A provider with its own CODEX_HOME / CLAUDE_CONFIG_DIR writes elsewhere:
  // follow that root too.
  std::string root = meter::LogRootOf(pid, *kind);
  if (!root.empty() && follower_ && roots_.insert(root).second) {
    if (auto r = follower_->AddRoot({*kind, root}); !r) spdlog::warn("meter: {}: {}", root, r.error().message);
  }
}

void Metering::RemoveProvider(int pid) {
  if (attributor_) attributor_->RemoveProvider(pid);
}

void Metering::OnActivity() {
  if (tracker_) tracker_->OnActivity();
}

void Metering::OpenInterval(const std::string& kind, const std::string& subject, const std::string& reason) {
  if (!ledger_) return;
  std::string key = kind + "\n" + subject;
  if (open_intervals_.count(key)) return;
  if (auto id = ledger_->OpenInterval(kind, subject, meter::NowUnixMs(), reason)) open_intervals_[key] = *id;
}

void Metering::CloseInterval(const std::string& kind, const std::string& subject) {
  if (!ledger_) return;
  auto it = open_intervals_.find(kind + "\n" + subject);
  if (it == open_intervals_.end()) return;
  ledger_->CloseInterval(it->second, meter::NowUnixMs());
  open_intervals_.erase(it);
}

nlohmann::json Metering::StatusJson() {
  nlohmann::json out = nlohmann::json::array();
  if (!tracker_) return out;
  for (const auto& b : tracker_->Status(WallNow())) {
    nlohmann::json j = {{"name", b.name},
                        {"credits", b.spend.credits},
                        {"usd", b.spend.usd},
                        {"tokens", b.spend.tokens},
                        {"fraction", b.fraction},
                        {"exhausted", b.exhausted}};
    for (const auto& pb : tracker_->policy().budgets) {
      if (pb.name != b.name) continue;
      if (pb.limit_credits) j["limit_credits"] = *pb.limit_credits;
      if (pb.limit_usd) j["limit_usd"] = *pb.limit_usd;
      if (pb.limit_tokens) j["limit_tokens"] = *pb.limit_tokens;
      j["window"] = enforcer::ToString(pb.window);
    }
    j["resets_at"] = b.resets_at_ms ? nlohmann::json(meter::FormatIsoTime(*b.resets_at_ms)) : nlohmann::json();
    out.push_back(std::move(j));
  }
  return out;
}

void Metering::Close() {
  if (ingestor_) ingestor_->Flush();
  if (follower_) follower_->Close();
  if (boundary_) {
    uv_close(reinterpret_cast<uv_handle_t*>(boundary_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    boundary_ = nullptr;
  }
  if (ledger_) {
    for (auto& [key, id] : open_intervals_) ledger_->CloseInterval(id, meter::NowUnixMs());
    open_intervals_.clear();
  }
}

}  // namespace dormant::launcher
