#include "enforcer/time.h"

namespace dormant::enforcer {

std::string FormatDuration(Duration d) {
  using namespace std::chrono;
  if (d < Duration::zero()) {
    std::string out(1, '-');
    out.append(FormatDuration(-d));
    return out;
  }
  if (d == Duration::zero()) return "0s";
  std::string out;
  auto h = duration_cast<hours>(d);
  d -= h;
  auto m = duration_cast<minutes>(d);
  d -= m;
  auto s = duration_cast<seconds>(d);
  d -= s;
  // append() rather than operator+: GCC 12 at -O3 warns (-Wrestrict) on the latter.
  auto put = [&out](long long n, const char* unit) {
    if (n == 0) return;
    out.append(std::to_string(n));
    out.append(unit);
  };
  put(h.count(), "h");
  put(m.count(), "m");
  put(s.count(), "s");
  put(d.count(), "ms");
  return out;
}

}  // namespace dormant::enforcer
