// Subtree() over any ProcessTable: a breadth-first walk, so parents come
// before their children and the cost grows with the tree, not the machine.
#include <unordered_set>

#include "platform/process_table.h"

namespace dormant::platform {

std::vector<int> Subtree(ProcessTable& table, int root) {
  std::vector<int> order;
  // The root must exist: a gone root has no subtree, even if its pid's
  // children file were still readable for a moment.
  if (!table.Read(root)) return order;
  std::unordered_set<int> seen = {root};
  order.push_back(root);
  // `order` doubles as the queue; a seen-set guards against a pid reused
  // during the walk showing up twice (which would otherwise loop).
  for (size_t next = 0; next < order.size(); ++next) {
    for (int child : table.Children(order[next])) {
      if (seen.insert(child).second) order.push_back(child);
    }
  }
  return order;
}

}  // namespace dormant::platform
