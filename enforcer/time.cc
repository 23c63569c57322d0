#include "enforcer/time.h"

namespace dormant::enforcer {

std::string FormatDuration(Duration d) {
  using namespace std::chrono;
  if (d < Duration::zero()) return "-" + FormatDuration(-d);
  if (d == Duration::zero()) return "0s";
  std::string out;
  auto h = duration_cast<hours>(d);
  d -= h;
  auto m = duration_cast<minutes>(d);
  d -= m;
  auto s = duration_cast<seconds>(d);
  d -= s;
  if (h.count()) out += std::to_string(h.count()) + "h";
  if (m.count()) out += std::to_string(m.count()) + "m";
  if (s.count()) out += std::to_string(s.count()) + "s";
  if (d.count()) out += std::to_string(d.count()) + "ms";
  return out;
}

}  // namespace dormant::enforcer
