// What `dormant run` tells the user on the desktop ([notify] in
// docs/policy.md): warnings, and what budgets did to providers. Routine idle
// suspends and resumes stay log-only. Pure: the supervisor hands the result to
// a platform::Notifier.
#pragma once

#include <string>
#include <vector>

#include "enforcer/enforcer.h"
#include "platform/notifier.h"

namespace dormant::launcher {

/// One desktop notification. `subject` groups notices whose bubbles replace
/// each other ("idle", "budget 'daily'").
struct Notice {
  std::string subject;
  std::string summary;
  std::string body;
  platform::Urgency urgency = platform::Urgency::kNormal;

  bool operator==(const Notice&) const = default;
};

/// The notices for `actions`, which the enforcer returned for `cause` (null
/// when they came from a control command or a reload):
///  - every kWarn (idle.warn_after, budget.warn_at): normal urgency;
///  - a budget exhausted (kBudgetExhausted) or idle spend past [budget_idle]
///    (kIdleSpendExceeded): one critical notice saying why and what was done
///    to each provider;
///  - a provider ended or held on sight because a budget locked providers out.
/// Nothing else (idle suspends, resumes, kills after kill_after).
std::vector<Notice> NoticesFor(const enforcer::Event* cause, const std::vector<enforcer::Action>& actions);

}  // namespace dormant::launcher
