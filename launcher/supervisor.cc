#include "launcher/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <set>

#include "enforcer/enforcer.h"
#include "enforcer/matcher.h"
#include "launcher/control.h"
#include "launcher/guardian.h"
#include "launcher/metering.h"
#include "launcher/notify.h"
#include "platform/cgroup_freezer.h"
#include "platform/freezer.h"
#include "platform/gate.h"
#include "platform/idle_factory.h"
#include "platform/notifier.h"
#include "platform/power_source.h"
#include "platform/process_table.h"
#include "platform/process_watcher.h"
#include "platform/unique_fd.h"

namespace dormant::launcher {
namespace {

using enforcer::Action;
using enforcer::Duration;
using enforcer::Event;
using enforcer::TimePoint;

// The safety-net walk of the tree. With the process connector it only catches
// what was lost; without it, it is how new processes are found at all.
constexpr uint64_t kScanWithWatcherMs = 2000;
constexpr uint64_t kScanWithoutWatcherMs = 250;

std::string Iso8601(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
  // RFC 3339 wants the offset as +hh:mm.
  std::string s = buf;
  if (s.size() >= 5) s.insert(s.size() - 2, ":");
  return s;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The gate as the launcher uses it: a compiled filter for the child, and
// whether the user asked for it outright (`on`) or only where safe (`auto`).
struct GatePlan {
  std::unique_ptr<platform::GateProgram> program;
  bool required = false;
  std::string why;  // why it is on or off, for the log and status
};

// fork + exec of the app, reporting exec failure through a CLOEXEC pipe. With a
// gate, the child installs the filter just before exec and sends us its
// listener; the app's own exec then waits on the gate, so we serve it until
// the exec has happened (or failed).
Expected<int> SpawnApp(const std::vector<std::string>& command, GatePlan* gate,
                       const platform::GateDecider& decide, int* listener) {
  *listener = -1;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Error{errno, std::string("pipe2: ") + std::strerror(errno)};
  platform::UniqueFd rd(p[0]), wr(p[1]);
  platform::UniqueFd gate_ours, gate_theirs;
  if (gate->program) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      return Error{errno, std::string("socketpair: ") + std::strerror(errno)};
    }
    gate_ours.reset(sv[0]);
    gate_theirs.reset(sv[1]);
  }
  std::vector<char*> argv;
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);  // no handler of ours may run in the child
  pid_t pid = fork();
  if (pid == 0) {
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (gate->program) {
      int r = platform::InstallGateInChild(*gate->program, gate_theirs.get());
      if (r < 0 && gate->required) {
        int e = -r;
        (void)!write(wr.get(), &e, sizeof e);
        _exit(126);
      }
    }
    execvp(argv[0], argv.data());
    int e = errno;
    (void)!write(wr.get(), &e, sizeof e);
    _exit(127);
  }
  int fork_errno = errno;
  sigprocmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return Error{fork_errno, std::string("fork: ") + std::strerror(fork_errno)};
  wr.reset();
  gate_theirs.reset();
  if (gate->program) {
    auto fd = platform::ReceiveListener(gate_ours.get(), 5000);
    if (fd) {
      *listener = *fd;
      platform::ServeBlocking(*listener, decide, rd.get(), 10000);
    } else {
      spdlog::warn("sandbox gate: not installed: {}", fd.error().message);
      gate->why = "not installed: " + fd.error().message;
      gate->program.reset();
    }
  }
  int e = 0;
  ssize_t n;
  while ((n = read(rd.get(), &e, sizeof e)) < 0 && errno == EINTR) {
  }
  if (n == sizeof e) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (*listener >= 0) close(*listener);
    *listener = -1;
    return Error{e, "cannot run '" + command[0] + "': " + std::strerror(e)};
  }
  return static_cast<int>(pid);
}

// The thread id a gate request names, as its process (thread group) id.
int TgidOf(int tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", tid);
  FILE* f = std::fopen(path, "re");
  if (!f) return tid;
  char line[256];
  int tgid = tid;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "Tgid: %d", &tgid) == 1) break;
  }
  std::fclose(f);
  return tgid;
}

const enforcer::BudgetPolicy& BudgetsOf(const enforcer::Policy& policy) { return policy.budget; }

// The freezer [suspend] freezer asks for, made before the supervisor (a
// "cgroup" that cannot work refuses to start), and why it was chosen.
struct FreezerPlan {
  std::unique_ptr<platform::ProcessTable> table;
  std::unique_ptr<platform::Freezer> freezer;
  std::string why;
};

// "auto" and "cgroup" use dormant's own cgroup v2 directory, where the
// providers were born, if dormant may make child cgroups there and move
// processes into them (root, or a systemd scope with Delegate=yes).
// DORMANT_TEST_CGROUP_DIR stands in for that directory in tests.
Expected<FreezerPlan> ChooseFreezer(enforcer::SuspendFreezer mode) {
  using enforcer::SuspendFreezer;
  FreezerPlan plan;
  plan.table = platform::CreateProcessTable();
  if (mode == SuspendFreezer::kSignal) {
    plan.freezer = platform::CreateSignalFreezer(*plan.table);
    plan.why = "[suspend] freezer = \"signal\"";
    return plan;
  }
  const char* test_dir = std::getenv("DORMANT_TEST_CGROUP_DIR");
  Expected<std::string> dir = test_dir ? Expected<std::string>(std::string(test_dir)) : platform::OwnCgroupDir();
  if (dir) {
    if (auto ok = platform::CheckDelegated(*dir); !ok) dir = ok.error();
  }
  using Made = Expected<std::unique_ptr<platform::Freezer>>;
  Made cgroup = dir ? platform::CreateCgroupFreezer(*plan.table, *dir) : Made(dir.error());
  if (cgroup) {
    plan.freezer = std::move(*cgroup);
    plan.why = (mode == SuspendFreezer::kAuto ? "auto: " : "[suspend] freezer = \"cgroup\": ") +
               std::string("cgroup v2 freezer under ") + *dir;
    return plan;
  }
  if (mode == SuspendFreezer::kCgroup) {
    return Error{cgroup.error().code, "[suspend] freezer = \"cgroup\" but the cgroup v2 freezer is unavailable: " +
                                          cgroup.error().message};
  }
  plan.freezer = platform::CreateSignalFreezer(*plan.table);
  plan.why = "auto: no delegated cgroup v2 directory (" + cgroup.error().message + ")";
  return plan;
}

class Supervisor : public platform::IdleSource::Listener, public platform::PowerSource::Listener {
 public:
  Supervisor(const RunOptions& opts, enforcer::Policy policy, Guardian guardian, GatePlan gate,
             std::optional<platform::GateJournal> journal, FreezerPlan freezer)
      : opts_(opts),
        gate_plan_(std::move(gate)),
        journal_(std::move(journal)),
        policy_sources_(opts.sources),
        guardian_(std::move(guardian)),
        table_(std::move(freezer.table)),
        freezer_(std::move(freezer.freezer)),
        freezer_why_(std::move(freezer.why)),
        tree_(getpid()),
        enforcer_(policy, TimePoint{}) {
    uv_loop_init(&loop_);
    enforcer_ = enforcer::Enforcer(std::move(policy), Now());
  }

  int Run();

  // IdleSource::Listener
  void OnIdleSample(Duration idle_for) override { Feed(Event::IdleSample(idle_for)); }
  void OnIdleSourceFailed(const Error& why) override;
  // PowerSource::Listener
  void OnPrepareForSleep(bool sleeping) override;
  void OnWake(Duration slept) override;
  void OnBatteryChanged(bool on_battery) override;
  void OnLockChanged(bool locked) override;
  void OnPowerSourceFailed(const Error& why) override;

 private:
  platform::Verdict Decide(const platform::GateRequest& r);
  void StartIdleSource();
  void StartNextIdleCandidate();
  TimePoint Now() { return TimePoint(Duration(uv_now(&loop_))); }
  const enforcer::Policy& policy() const { return enforcer_.policy(); }

  void Feed(const Event& e);
  void Perform(const std::vector<Action>& actions, const Event* cause = nullptr);
  void Notify(const std::vector<Action>& actions, const Event* cause);
  void ArmDeadline();
  void Rescan();
  void Learn(int pid);
  void Forget(int pid);
  void ApplyChanges(const std::vector<enforcer::ProcessTree::Change>& changes);
  void StopIfUnderStopped(int pid);
  void Reap();
  void OnAppExit(int status);
  void MaybeFinish();
  void Shutdown();
  nlohmann::json Handle(const nlohmann::json& req);
  nlohmann::json StatusJson();
  std::vector<int> TreePids();

  static Supervisor* Self(uv_handle_t* h) { return static_cast<Supervisor*>(h->data); }

  RunOptions opts_;
  GatePlan gate_plan_;
  std::optional<platform::GateJournal> journal_;
  std::unique_ptr<platform::Gate> gate_;
  std::map<std::string, uint64_t> refused_;  // by provider: refused execs and connects
  std::vector<std::pair<uint64_t, enforcer::ProcessFacts>> to_stop_;  // deferred provider execs
  uv_timer_t gate_later_{};
  PolicySources policy_sources_;
  Guardian guardian_;
  uv_loop_t loop_;
  std::unique_ptr<platform::ProcessTable> table_;
  std::unique_ptr<platform::Freezer> freezer_;  // uses table_: declared after it
  std::string freezer_why_;
  std::unique_ptr<platform::ProcessWatcher> watcher_;
  enforcer::ProcessTree tree_;
  enforcer::Enforcer enforcer_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<platform::IdleSource> idle_;
  std::vector<platform::IdleCandidate> idle_candidates_;  // still to try, best first
  std::string idle_name_ = "manual";
  std::string idle_reason_;
  std::unique_ptr<platform::PowerSource> power_;
  uv_timer_t idle_retry_{};
  std::unique_ptr<Metering> metering_;
  std::unique_ptr<platform::Notifier> notifier_;  // [notify] desktop

  uv_signal_t signals_[5];
  uv_timer_t deadline_{}, scan_{}, shutdown_timer_{};
  uv_poll_t watch_poll_{};
  bool watch_poll_on_ = false;

  int app_pid_ = 0;
  bool app_running_ = false;
  int exit_code_ = 0;
  bool finishing_ = false;
  bool killed_leftovers_ = false;
  std::set<int> stopped_roots_;  // provider roots we have stopped
  std::string socket_path_;
};

void Supervisor::Feed(const Event& e) {
  Duration idle_before = enforcer_.IdleFor(Now());
  Perform(enforcer_.OnEvent(e, Now()), &e);
  if (metering_ && enforcer_.IdleFor(Now()) < idle_before) {
    metering_->OnActivity();
    metering_->CloseInterval("idle", "user");
  }
  ArmDeadline();
  // While anything is held stopped, the idle source should report input fast.
  if (idle_) idle_->SetEager(enforcer_.suspended_mode());
}

// The gate's question: may this exec or connect go ahead? Answered on the
// loop, at once (the caller is waiting in the kernel).
platform::Verdict Supervisor::Decide(const platform::GateRequest& r) {
  int pid = TgidOf(r.pid);
  if (r.kind == platform::GateRequest::Kind::kExec) {
    enforcer::ProcessFacts facts{pid, 0, r.path, r.argv};
    if (auto d = enforcer::MatchProvider(policy().sandbox.deny_exec, facts)) {
      const auto& m = policy().sandbox.deny_exec[*d];
      ++refused_[m.name];
      spdlog::warn("gate: refused exec of {} by pid {}: [sandbox] deny_exec '{}'", r.path, pid, m.name);
      return platform::Verdict::kRefuse;
    }
    auto m = enforcer::MatchProvider(policy().providers, facts);
    if (!m || tree_.ProviderOf(pid) != 0) return platform::Verdict::kContinue;  // not a new provider
    const auto& name = policy().providers[*m].name;
    if (!enforcer_.lockout().empty()) {
      ++refused_[name];
      spdlog::warn("gate: refused exec of provider {} ({}) by pid {}: locked out: {}", name, r.path, pid,
                   enforcer_.lockout());
      return platform::Verdict::kRefuse;
    }
    if (enforcer_.suspended_mode()) {
      // Let the exec go on and stop the new program as it starts: on the next
      // loop turn we answer, send SIGSTOP at once (it lands as the exec returns
      // to user space, before the program's first instruction, unless loading
      // it is faster than our kill), and learn the process as a provider from
      // the request itself, since /proc may still show the old program. The
      // stop must follow the answer: a stop while the exec waits on the gate
      // would leave it stopped before the exec, unknown as a provider.
      to_stop_.push_back({r.id, {pid, 0, r.path, r.argv}});
      uv_timer_start(&gate_later_, [](uv_timer_t* t) {
        auto* self = Self(reinterpret_cast<uv_handle_t*>(t));
        for (auto& [id, facts] : std::exchange(self->to_stop_, {})) {
          auto info = self->table_->Read(facts.pid);
          if (info) {
            self->guardian_.WillStop(facts.pid, info->start_ticks,
                                     self->freezer_->CgroupFor(facts.pid, info->start_ticks));
          }
          bool answered = self->gate_ && self->gate_->Answer(id, platform::Verdict::kContinue);
          if (!answered || !info) continue;  // the watchdog answered, or it is gone
          if (!self->enforcer_.suspended_mode()) {  // the user came back meanwhile
            self->guardian_.Released(facts.pid);
            continue;
          }
          kill(facts.pid, SIGSTOP);
          facts.ppid = info->ppid;
          self->ApplyChanges({self->tree_.Update(facts, self->policy().providers)});
          // Whatever the enforcer decided for it, a provider it lets run must run.
          if (self->enforcer_.StateOf(facts.pid) == enforcer::ProviderState::kRunning) {
            kill(facts.pid, SIGCONT);
            self->guardian_.Released(facts.pid);
          }
        }
      }, 0, 0);
      spdlog::info("gate: provider {} exec by pid {} starts stopped (providers are held)", name, pid);
      return platform::Verdict::kDefer;
    }
    return platform::Verdict::kContinue;
  }
  // connect to an IP address
  int root = tree_.ProviderOf(pid);
  if (root == 0) return platform::Verdict::kContinue;
  bool loopback = r.loopback;
  if (const char* fake = std::getenv("DORMANT_TEST_NONLOOPBACK"); fake && r.address == fake) loopback = false;
  if (policy().sandbox.network != enforcer::SandboxNetwork::kWhenActive || loopback ||
      enforcer_.NetworkAllowed(Now())) {
    return platform::Verdict::kContinue;
  }
  std::string name = "?";
  for (const auto& p : enforcer_.GetStatus(Now()).providers) {
    if (p.pid == root) name = p.name;
  }
  ++refused_[name];
  spdlog::warn("gate: refused connect by {} (pid {}) to {}:{}: the user is away (network = when-active)", name,
               pid, r.address, r.port);
  return platform::Verdict::kRefuse;
}

// [idle] source: one named source, or "auto": the candidates for this session,
// best first. Either way "manual" (`dormant activity`) is the last resort, and
// `dormant activity` always counts.
void Supervisor::StartIdleSource() {
  const std::string& want = policy().idle.source;
  if (want == "auto") {
    platform::AutoChoice choice = platform::ChooseIdleSource(platform::CurrentEnvironment());
    idle_candidates_ = choice.candidates;
  } else {
    idle_candidates_ = {{want, "named in the policy"}};
    if (want != "manual") idle_candidates_.push_back({"manual", "fallback: `dormant activity` only"});
  }
  StartNextIdleCandidate();
}

void Supervisor::StartNextIdleCandidate() {
  while (!idle_candidates_.empty()) {
    platform::IdleCandidate c = idle_candidates_.front();
    idle_candidates_.erase(idle_candidates_.begin());
    auto src = platform::CreateIdleSource(c.name);
    if (!src) {
      spdlog::warn("idle source {}: {}", c.name, src.error().message);
      continue;
    }
    if (auto r = (*src)->Start(&loop_, this); !r) {
      spdlog::warn("idle source {} unavailable: {}", c.name, r.error().message);
      continue;
    }
    idle_ = std::move(*src);
    idle_name_ = c.name;
    idle_reason_ = c.reason;
    idle_->SetEager(enforcer_.suspended_mode());
    spdlog::info("idle source: {} ({})", idle_name_, idle_reason_);
    return;
  }
  idle_name_ = "manual";
  idle_reason_ = "no other source works here";
  spdlog::warn("idle source: manual ({}): only `dormant activity` marks the user as back", idle_reason_);
}

void Supervisor::OnIdleSourceFailed(const Error& why) {
  spdlog::error("idle source {} failed: {}; trying the next one", idle_name_, why.message);
  // The source may be inside its own callback: replace it from a fresh loop turn.
  uv_timer_start(&idle_retry_, [](uv_timer_t* t) {
    auto* self = Self(reinterpret_cast<uv_handle_t*>(t));
    if (self->idle_) {
      self->idle_->Stop();
      self->idle_.reset();
    }
    self->StartNextIdleCandidate();
  }, 0, 0);
}

void Supervisor::OnPrepareForSleep(bool sleeping) {
  if (!sleeping) return;  // the wake comes as OnWake
  spdlog::info("the machine is about to sleep: suspending providers");
  Feed(Event::Sleep());
  // Providers are stopped (Perform is synchronous): let the machine sleep.
  if (power_) power_->ReleaseSleepLock();
}

void Supervisor::OnWake(Duration slept) {
  spdlog::info("woke after sleeping {}", enforcer::FormatDuration(slept));
  Feed(Event::Wake());
}

void Supervisor::OnBatteryChanged(bool on_battery) {
  spdlog::info("power: {}", on_battery ? "on battery" : "on AC");
  Feed(Event::Battery(on_battery));
}

void Supervisor::OnLockChanged(bool locked) {
  spdlog::info("session {}", locked ? "locked" : "unlocked");
  Feed(Event::Lock(locked));
}

void Supervisor::OnPowerSourceFailed(const Error& why) {
  spdlog::warn("power source {} failed: {}", power_ ? std::string(power_->name()) : "?", why.message);
}

void Supervisor::ArmDeadline() {
  auto next = enforcer_.NextDeadline();
  if (!next) {
    uv_timer_stop(&deadline_);
    return;
  }
  Duration wait = std::max(Duration::zero(), *next - Now());
  uv_timer_start(&deadline_, [](uv_timer_t* t) {
    Self(reinterpret_cast<uv_handle_t*>(t))->Feed(Event::Tick());
  }, wait.count(), 0);
}

// Desktop notifications (launcher/notify.h says what is notified).
void Supervisor::Notify(const std::vector<Action>& actions, const Event* cause) {
  if (!policy().notify.desktop || finishing_) return;
  std::vector<Notice> notices = NoticesFor(cause, actions);
  if (notices.empty()) return;
  if (!notifier_) notifier_ = platform::CreateNotifier(&loop_);  // turned on by a reload
  // Never waits; a failure has been logged once by the notifier.
  for (const Notice& n : notices) (void)notifier_->Notify(n.subject, n.summary, n.body, n.urgency);
}

void Supervisor::Perform(const std::vector<Action>& actions, const Event* cause) {
  for (const Action& a : actions) {
    if (a.kind == Action::Kind::kWarn) {
      spdlog::warn("{}", a.reason);
      continue;
    }
    Expected<std::vector<int>> done = std::vector<int>{};
    if (metering_) {
      std::string subject = a.provider + " " + std::to_string(a.pid);
      if (a.kind == Action::Kind::kSuspend) {
        metering_->OpenInterval("suspended", subject, a.reason);
        if (a.reason.starts_with("idle for")) metering_->OpenInterval("idle", "user", a.reason);
      } else {
        metering_->CloseInterval("suspended", subject);
      }
    }
    switch (a.kind) {
      case Action::Kind::kSuspend:
        if (auto info = table_->Read(a.pid)) {
          guardian_.WillStop(a.pid, info->start_ticks, freezer_->CgroupFor(a.pid, info->start_ticks));
        }
        done = freezer_->Stop(a.pid);
        stopped_roots_.insert(a.pid);
        break;
      case Action::Kind::kResume:
        done = freezer_->Continue(a.pid);
        stopped_roots_.erase(a.pid);
        guardian_.Released(a.pid);
        break;
      case Action::Kind::kTerminate:
        done = freezer_->Signal(a.pid, SIGTERM);
        stopped_roots_.erase(a.pid);
        guardian_.Released(a.pid);
        break;
      case Action::Kind::kKill:
        done = freezer_->Signal(a.pid, SIGKILL);
        break;
      case Action::Kind::kWarn:
        break;
    }
    if (done) {
      spdlog::info("{} {} (pid {}, {} process{}): {}", enforcer::ToString(a.kind), a.provider, a.pid,
                   done->size(), done->size() == 1 ? "" : "es", a.reason);
    } else {
      spdlog::warn("{} {} (pid {}) failed: {}", enforcer::ToString(a.kind), a.provider, a.pid,
                   done.error().message);
    }
  }
  Notify(actions, cause);
}

std::vector<int> Supervisor::TreePids() {
  std::vector<int> pids = platform::Subtree(*table_, getpid());
  if (!pids.empty() && pids.front() == getpid()) pids.erase(pids.begin());
  return pids;
}

void Supervisor::ApplyChanges(const std::vector<enforcer::ProcessTree::Change>& changes) {
  using Kind = enforcer::ProcessTree::Change::Kind;
  for (const auto& c : changes) {
    if (c.kind == Kind::kProviderStarted) {
      spdlog::info("provider {} found: pid {}", policy().providers[c.matcher].name, c.pid);
      if (metering_) metering_->AddProvider(c.pid, policy().providers[c.matcher].exe);
      Feed(Event::ProviderStarted(c.pid, c.matcher));
    } else if (c.kind == Kind::kProviderExited) {
      if (stopped_roots_.erase(c.pid)) guardian_.Released(c.pid);
      spdlog::info("provider pid {} exited", c.pid);
      if (metering_) metering_->RemoveProvider(c.pid);
      Feed(Event::ProviderExited(c.pid));
    }
  }
}

// A process that appears below a stopped provider (forked as the stop landed)
// is stopped too: everything below a provider shares its state.
void Supervisor::StopIfUnderStopped(int pid) {
  int root = tree_.ProviderOf(pid);
  if (root && root != pid && stopped_roots_.count(root)) {
    if (auto r = freezer_->Stop(pid); !r) spdlog::debug("stop late child {}: {}", pid, r.error().message);
  }
}

void Supervisor::Learn(int pid) {
  auto info = table_->Read(pid);
  if (!info) return;
  enforcer::ProcessFacts facts{info->pid, info->ppid, info->exe, info->argv};
  auto change = tree_.Update(facts, policy().providers);
  ApplyChanges({change});
  StopIfUnderStopped(pid);
}

void Supervisor::Forget(int pid) { ApplyChanges(tree_.Remove(pid, policy().providers)); }

void Supervisor::Rescan() {
  std::vector<int> live = TreePids();
  std::set<int> seen(live.begin(), live.end());
  for (int pid : tree_.Pids()) {
    if (!seen.count(pid)) Forget(pid);
  }
  for (int pid : live) {
    if (!tree_.Contains(pid)) {
      Learn(pid);
    } else if (!watcher_) {
      // No exec events: a process seen before its exec must be read again,
      // unless it sits below a provider (then it belongs to it whatever it runs).
      int root = tree_.ProviderOf(pid);
      if (root == 0 || root == pid) Learn(pid);
    }
  }
  MaybeFinish();
}

void Supervisor::Reap() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    if (pid == app_pid_) OnAppExit(status);
    if (tree_.Contains(pid)) Forget(pid);
  }
  MaybeFinish();
}

void Supervisor::OnAppExit(int status) {
  app_running_ = false;
  if (WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
    spdlog::info("app (pid {}) exited with status {}", app_pid_, exit_code_);
  } else if (WIFSIGNALED(status)) {
    exit_code_ = 128 + WTERMSIG(status);
    spdlog::info("app (pid {}) died of signal {} ({})", app_pid_, WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
  }
  Feed(Event::AppExited());
  // Whatever else the app left behind goes too: nothing is orphaned.
  std::set<int> providers;
  for (int pid : tree_.Pids()) {
    if (tree_.ProviderOf(pid) == 0) {
      kill(pid, SIGCONT);
      kill(pid, SIGTERM);
    }
  }
  uv_timer_start(&shutdown_timer_, [](uv_timer_t* t) {
    auto* self = Self(reinterpret_cast<uv_handle_t*>(t));
    // Past the grace: end what is left, providers included.
    self->killed_leftovers_ = true;
    for (int pid : self->TreePids()) {
      kill(pid, SIGKILL);
      kill(pid, SIGCONT);
    }
    self->Rescan();
  }, policy().idle.kill_grace.count() + 500, 0);
  Rescan();
}

void Supervisor::MaybeFinish() {
  if (app_running_ || finishing_) return;
  if (!TreePids().empty()) return;
  finishing_ = true;
  Shutdown();
}

void Supervisor::Shutdown() {
  for (auto& s : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&scan_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&shutdown_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_retry_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&gate_later_), nullptr);
  if (gate_) gate_->Close();
  if (idle_) idle_->Stop();
  if (power_) power_->Stop();
  if (watch_poll_on_) uv_close(reinterpret_cast<uv_handle_t*>(&watch_poll_), nullptr);
  if (control_) control_->Close();
  if (metering_) metering_->Close();
  if (notifier_) notifier_->Close();  // what was sent is flushed to the bus
  guardian_.Close();
}

nlohmann::json Supervisor::StatusJson() {
  TimePoint now = Now();
  auto wall = [&](TimePoint t) {
    return Iso8601(std::chrono::system_clock::now() - std::chrono::duration_cast<std::chrono::system_clock::duration>(now - t));
  };
  enforcer::Status s = enforcer_.GetStatus(now);
  nlohmann::json j;
  j["ok"] = true;
  j["name"] = opts_.name;
  j["pid"] = getpid();
  j["app"] = {{"pid", app_pid_}, {"running", app_running_}, {"command", opts_.command}};
  j["idle_for_ms"] = s.idle_for.count();
  j["idle_source"] = idle_name_;
  j["idle_source_reason"] = idle_reason_;
  j["power"] = {{"source", power_ ? std::string(power_->name()) : "none"},
                {"on_battery", s.on_battery},
                {"locked", s.locked},
                {"waiting_for_input", s.waiting_for_input}};
  j["paused"] = s.paused;
  j["lockout"] = s.lockout.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.lockout);
  j["freezer"] = std::string(freezer_->name());
  j["freezer_reason"] = freezer_why_;
  {
    nlohmann::json g = {{"on", gate_ != nullptr}, {"why", gate_plan_.why}};
    if (gate_) {
      auto c = gate_->counters();
      g["exec"] = c.exec;
      g["connect"] = c.connect;
      g["refused"] = c.refused;
      g["watchdog"] = c.watchdog;
      g["guardian"] = c.guardian;  // continued by the guardian while dormant was stopped
      g["errors"] = c.errors;
    }
    g["refused_by_provider"] = refused_;
    j["gate"] = std::move(g);
  }
  j["budgets"] = metering_ ? metering_->StatusJson() : nlohmann::json::array();
  j["providers"] = nlohmann::json::array();
  for (const auto& p : s.providers) {
    nlohmann::json pj = {{"pid", p.pid},
                         {"name", p.name},
                         {"state", enforcer::ToString(p.state)},
                         {"since", wall(p.since)},
                         {"since_ms_ago", (now - p.since).count()},
                         {"reason", p.reason}};
    if (p.next_at) {
      pj["next"] = {{"action", p.next},
                    {"in_ms", std::max<int64_t>(0, (*p.next_at - now).count())},
                    {"at", wall(*p.next_at)}};
    } else {
      pj["next"] = nullptr;
    }
    j["providers"].push_back(std::move(pj));
  }
  return j;
}

nlohmann::json Supervisor::Handle(const nlohmann::json& req) {
  const std::string cmd = req["cmd"].get<std::string>();
  if (cmd == "status") return StatusJson();
  if (cmd == "activity" || cmd == "pause" || cmd == "resume") {
    size_t before = 0;
    Event e = cmd == "activity" ? Event::Activity() : cmd == "pause" ? Event::Pause() : Event::Resume();
    auto actions = enforcer_.OnEvent(e, Now());
    before = actions.size();
    Perform(actions);
    ArmDeadline();
    spdlog::info("control: {} ({} action{})", cmd, before, before == 1 ? "" : "s");
    return {{"ok", true}, {"actions", before}};
  }
  if (cmd == "reload") {
    LoadedPolicy loaded = LoadPolicy(policy_sources_);
    if (!loaded.errors.empty()) {
      nlohmann::json errs = nlohmann::json::array();
      for (const auto& d : loaded.errors) errs.push_back(d.ToString());
      spdlog::error("reload refused; the old policy stays in force:");
      for (const auto& d : loaded.errors) spdlog::error("  {}", d.ToString());
      return {{"ok", false}, {"error", "the new policy is invalid; the old one stays in force"},
              {"errors", errs}};
    }
    for (const auto& d : loaded.notices) spdlog::warn("{}", d.ToString());
    // Matchers may have changed: re-match the whole tree against the new ones
    // before the enforcer sees the new policy.
    auto changes = tree_.Rematch(loaded.policy.providers);
    for (const auto& c : changes) {
      if (c.kind == enforcer::ProcessTree::Change::Kind::kProviderExited) Feed(Event::ProviderExited(c.pid));
    }
    Perform(enforcer_.SetPolicy(loaded.policy, Now()));
    if (metering_) metering_->SetBudgets(BudgetsOf(loaded.policy));
    for (const auto& c : changes) {
      if (c.kind == enforcer::ProcessTree::Change::Kind::kProviderStarted) {
        Feed(Event::ProviderStarted(c.pid, c.matcher));
      }
    }
    ArmDeadline();
    spdlog::info("policy reloaded");
    return {{"ok", true}};
  }
  return {{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
}

int Supervisor::Run() {
  // Every descendant, even one whose parent dies or that double-forks, stays
  // below us, so the tree can be followed from our own pid.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    spdlog::error("prctl(PR_SET_CHILD_SUBREAPER): {}", std::strerror(errno));
    return 2;
  }
  auto dir = ControlDir();
  if (!dir) {
    spdlog::error("control socket: {}", dir.error().message);
    return 2;
  }
  socket_path_ = *dir + "/" + opts_.name + ".sock";
  control_ = std::make_unique<ControlServer>(&loop_, [this](const nlohmann::json& r) { return Handle(r); });
  if (auto r = control_->Listen(socket_path_); !r) {
    spdlog::error("{} (another `dormant run --name {}`? pick another --name)", r.error().message, opts_.name);
    control_->Close();
    uv_run(&loop_, UV_RUN_NOWAIT);
    return 2;
  }

  const int sigs[5] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD};
  for (int i = 0; i < 5; ++i) {
    uv_signal_init(&loop_, &signals_[i]);
    signals_[i].data = this;
    uv_signal_start(&signals_[i], [](uv_signal_t* h, int sig) {
      auto* self = Self(reinterpret_cast<uv_handle_t*>(h));
      if (sig == SIGCHLD) return self->Reap();
      if (self->app_running_) {
        spdlog::info("forwarding {} to the app (pid {})", strsignal(sig), self->app_pid_);
        kill(self->app_pid_, sig);
      }
    }, sigs[i]);
  }
  for (uv_timer_t* t : {&deadline_, &scan_, &shutdown_timer_, &idle_retry_, &gate_later_}) {
    uv_timer_init(&loop_, t);
    t->data = this;
  }

  auto watcher = platform::CreateProcessWatcher();
  if (watcher) {
    watcher_ = std::move(*watcher);
    uv_poll_init(&loop_, &watch_poll_, watcher_->fd());
    watch_poll_.data = this;
    watch_poll_on_ = true;
    uv_poll_start(&watch_poll_, UV_READABLE, [](uv_poll_t* h, int, int) {
      auto* self = Self(reinterpret_cast<uv_handle_t*>(h));
      bool lost = false;
      for (const auto& e : self->watcher_->Drain(&lost)) {
        using K = platform::ProcEvent::Kind;
        if (e.kind == K::kFork && self->tree_.Contains(e.parent)) self->Learn(e.pid);
        else if (e.kind == K::kExec && self->tree_.Contains(e.pid)) self->Learn(e.pid);
        else if (e.kind == K::kExit && self->tree_.Contains(e.pid) && e.pid != getpid()) self->Forget(e.pid);
      }
      if (lost) self->Rescan();
    });
  } else {
    spdlog::info("process events unavailable ({}); walking the tree every {} ms",
                 watcher.error().message, kScanWithoutWatcherMs);
  }

  int listener = -1;
  auto app = SpawnApp(opts_.command, &gate_plan_,
                      [this](const platform::GateRequest& r) { return Decide(r); }, &listener);
  if (!app) {
    spdlog::error("{}", app.error().message);
    Shutdown();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return 127;
  }
  app_pid_ = *app;
  app_running_ = true;
  if (listener >= 0) {
    guardian_.GiveListener(listener);
    gate_ = std::make_unique<platform::Gate>(&loop_, listener,
                                             [this](const platform::GateRequest& r) { return Decide(r); });
    if (journal_) gate_->SetJournal(&*journal_);
    if (auto r = gate_->Start(); !r) {
      spdlog::error("sandbox gate: {}", r.error().message);
      gate_.reset();
    } else {
      spdlog::info("sandbox gate on ({})", gate_plan_.why);
    }
  } else if (!gate_plan_.why.empty()) {
    spdlog::info("sandbox gate off ({})", gate_plan_.why);
  }
  spdlog::info("freezer {} ({})", freezer_->name(), freezer_why_);
  // Idle time counts from the app's start.
  uv_update_time(&loop_);
  enforcer_ = enforcer::Enforcer(enforcer_.policy(), Now());
  spdlog::info("started {} (pid {}) as '{}'; idle source {}, suspend after {}, kill after {}; control {}",
               opts_.command[0], app_pid_, opts_.name, policy().idle.source,
               enforcer::FormatDuration(policy().idle.suspend_after),
               enforcer::FormatDuration(policy().idle.kill_after), socket_path_);
  StartIdleSource();
  if (auto p = platform::CreatePowerSource("auto"); p) {
    if (auto r = (*p)->Start(&loop_, this); r) {
      power_ = std::move(*p);
    } else {
      spdlog::warn("power events unavailable: {}", r.error().message);
    }
  }
  // Connect now, so a missing notification daemon is reported at start.
  if (policy().notify.desktop) notifier_ = platform::CreateNotifier(&loop_);
  metering_ = std::make_unique<Metering>(&loop_, Metering::Hooks{
      // "Idle" for the ledger: no input for at least [idle] network_after.
      [this] { return enforcer_.IdleFor(Now()) >= policy().idle.network_after; },
      [this](const Event& e) { Feed(e); }});
  if (auto r = metering_->Start(BudgetsOf(policy())); !r) {
    spdlog::warn("metering off: {}", r.error().message);
    metering_.reset();
  }
  Learn(app_pid_);
  uint64_t every = watcher_ ? kScanWithWatcherMs : kScanWithoutWatcherMs;
  uv_timer_start(&scan_, [](uv_timer_t* t) { Self(reinterpret_cast<uv_handle_t*>(t))->Rescan(); }, 0, every);
  ArmDeadline();
  Reap();  // the app may already be gone

  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) spdlog::debug("loop closed with handles open: {}", uv_strerror(rc));
  return exit_code_;
}

}  // namespace

int RunSupervisor(const RunOptions& options) {
  LoadedPolicy loaded = LoadPolicy(options.sources);
  if (!loaded.errors.empty()) {
    for (const auto& d : loaded.errors) std::fprintf(stderr, "%s\n", d.ToString().c_str());
    std::fprintf(stderr, "dormant: invalid policy; nothing started\n");
    return 2;
  }
  for (const auto& d : loaded.notices) spdlog::warn("{}", d.ToString());
  RunOptions opts = options;
  if (opts.name.empty()) opts.name = BaseName(opts.command[0]);
  if (auto r = CheckName(opts.name); !r) {
    std::fprintf(stderr, "dormant: %s\n", r.error().message.c_str());
    return 2;
  }
  GatePlan gate;
  std::optional<platform::GateJournal> journal;
  using enforcer::SandboxGate;
  SandboxGate mode = loaded.policy.sandbox.gate;
  if (mode == SandboxGate::kOff) {
    gate.why = "[sandbox] gate = \"off\"";
  } else {
    gate.required = mode == SandboxGate::kOn;
    std::optional<std::string> unsafe;
    if (mode == SandboxGate::kAuto) unsafe = platform::GateUnsafeReason(opts.command[0]);
    if (unsafe) {
      gate.why = "auto: " + *unsafe;
    } else if (auto program = platform::CompileGate({}); !program) {
      if (gate.required) {
        std::fprintf(stderr, "dormant: [sandbox] gate = \"on\" but seccomp is unavailable: %s\n",
                     program.error().message.c_str());
        return 2;
      }
      gate.why = "auto: seccomp unavailable: " + program.error().message;
    } else {
      gate.program = std::move(*program);
      gate.why = mode == SandboxGate::kOn ? "[sandbox] gate = \"on\"" : "auto: seccomp available, app is safe to gate";
      if (auto j = platform::GateJournal::Create()) journal.emplace(std::move(*j));
    }
  }
  auto freezer = ChooseFreezer(loaded.policy.suspend.freezer);
  if (!freezer) {
    std::fprintf(stderr, "dormant: %s\n", freezer.error().message.c_str());
    return 2;
  }
  auto guardian = Guardian::Start(journal ? &*journal : nullptr);
  if (!guardian) {
    std::fprintf(stderr, "dormant: cannot start the guardian: %s\n", guardian.error().message.c_str());
    return 2;
  }
  Supervisor s(opts, std::move(loaded.policy), std::move(*guardian), std::move(gate), std::move(journal),
               std::move(*freezer));
  return s.Run();
}

}  // namespace dormant::launcher
