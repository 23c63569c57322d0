// The supervisor's metering: follows providers' own logs into the ledger,
// attributes usage to supervised providers, feeds the budget tracker, and turns
// what the tracker notices into enforcer events.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "enforcer/budget.h"
#include "enforcer/enforcer.h"
#include "enforcer/expected.h"

namespace dormant::meter {
class Ledger;
class Ingestor;
class LogFollower;
class Attributor;
}  // namespace dormant::meter

namespace dormant::launcher {

class Metering {
 public:
  struct Hooks {
    std::function<bool()> user_idle;                       // is the user idle right now?
    std::function<void(const enforcer::Event&)> feed;      // to the enforcer
  };
  Metering(uv_loop_t* loop, Hooks hooks);
  ~Metering();
  Metering(const Metering&) = delete;
  Metering& operator=(const Metering&) = delete;

  /// Opens the ledger ($DORMANT_LEDGER or the default path), seeds the budget
  /// windows from its history, and starts following every log root.
  Expected<void> Start(const enforcer::BudgetPolicy& budgets);
  /// A new budget policy (reload): windows are re-seeded from the ledger.
  void SetBudgets(const enforcer::BudgetPolicy& budgets);
  /// A supervised provider, by the exe its matcher names ("codex", "claude").
  void AddProvider(int pid, const std::string& exe);
  void RemoveProvider(int pid);
  /// The user became active: the idle-spend stretch starts over.
  void OnActivity();
  /// Intervals for the report: a state began or ended.
  void OpenInterval(const std::string& kind, const std::string& subject, const std::string& reason);
  void CloseInterval(const std::string& kind, const std::string& subject);
  /// Budgets, spend and reset times, for `dormant status`.
  nlohmann::json StatusJson();
  void Close();

 private:
  void Handle(const std::vector<enforcer::BudgetNotice>& notices);
  void ArmBoundary();
  void Seed();
  /// A new tracker for `budgets` in the machine's zone, seeded from the ledger.
  void Reseed(enforcer::BudgetPolicy budgets, const std::string& why);

  uv_loop_t* loop_;
  Hooks hooks_;
  std::unique_ptr<meter::Ledger> ledger_;
  std::unique_ptr<meter::Ingestor> ingestor_;
  std::unique_ptr<meter::LogFollower> follower_;
  std::unique_ptr<meter::Attributor> attributor_;
  std::unique_ptr<enforcer::BudgetTracker> tracker_;
  uv_timer_t* boundary_ = nullptr;
  std::map<std::string, int64_t> open_intervals_;  // kind + subject -> ledger id
  uint64_t events_ = 0;
  std::set<std::string> roots_;  // log roots followed
};

}  // namespace dormant::launcher
