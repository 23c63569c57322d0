#include "launcher/notify.h"

namespace dormant::launcher {
namespace {

using enforcer::Action;
using enforcer::Event;
using platform::Urgency;

constexpr const char* kSummary = "dormant";
// The enforcer's reason for a provider met while a budget locks them out.
constexpr std::string_view kLockedOut = "started while locked out";

// What a budget notice is about, from the budget tracker's wording: "budget
// 'daily' ...", "spend while idle passed [budget_idle] ...", "plan usage ...".
// Notices of one budget replace each other's bubbles; different budgets' do not.
std::string BudgetSubject(const std::string& text) {
  if (size_t at = text.find("budget '"); at != std::string::npos) {
    size_t end = text.find('\'', at + 8);
    if (end != std::string::npos) return text.substr(at, end + 1 - at);
  }
  if (text.find("[budget_idle]") != std::string::npos) return "budget_idle";
  if (text.starts_with("plan usage")) return "plan";
  return "budget";
}

const char* Done(Action::Kind kind) {
  switch (kind) {
    case Action::Kind::kTerminate: return "ended";
    case Action::Kind::kKill: return "killed";
    case Action::Kind::kSuspend: return "stopped";
    case Action::Kind::kResume: return "resumed";
    case Action::Kind::kWarn: break;
  }
  return "";
}

// "\ncodex (pid 12): ended" for each action on a provider.
std::string WhatWasDone(const std::vector<Action>& actions) {
  std::string out;
  for (const Action& a : actions) {
    if (a.kind == Action::Kind::kWarn) continue;
    out += "\n" + a.provider + " (pid " + std::to_string(a.pid) + "): " + Done(a.kind);
  }
  return out;
}

}  // namespace

std::vector<Notice> NoticesFor(const Event* cause, const std::vector<Action>& actions) {
  std::vector<Notice> out;
  const bool budget_warn = cause && cause->kind == Event::Kind::kBudgetWarn;
  for (const Action& a : actions) {
    if (a.kind == Action::Kind::kWarn) {
      out.push_back({budget_warn ? BudgetSubject(a.reason) : "idle", kSummary, a.reason, Urgency::kNormal});
    }
  }
  if (!cause) return out;
  switch (cause->kind) {
    case Event::Kind::kBudgetExhausted: {
      std::string body = cause->text + WhatWasDone(actions);
      if (cause->flag) {
        body += std::string("\nuntil the next window, a provider that starts is ") +
                (cause->kill ? "ended" : "stopped") + " at once";
      }
      out.push_back({BudgetSubject(cause->text), kSummary, body, Urgency::kCritical});
      break;
    }
    case Event::Kind::kIdleSpendExceeded:
      out.push_back({BudgetSubject(cause->text), kSummary,
                     cause->text + WhatWasDone(actions) + "\nproviders stay stopped until you are back",
                     Urgency::kCritical});
      break;
    case Event::Kind::kProviderStarted:
      for (const Action& a : actions) {
        if (a.pid != cause->pid || !a.reason.starts_with(kLockedOut)) continue;
        out.push_back({BudgetSubject(a.reason), kSummary,
                       a.provider + " (pid " + std::to_string(a.pid) + ") " + Done(a.kind) + ": " + a.reason,
                       Urgency::kCritical});
      }
      break;
    default:
      break;
  }
  return out;
}

}  // namespace dormant::launcher
