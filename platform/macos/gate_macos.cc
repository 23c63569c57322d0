// macOS has no seccomp: the gate is unavailable there, and says so. Callers
// carry no #ifdef: `gate = "on"` refuses to start, `auto` goes on without it.
#include <unistd.h>

#include <cerrno>

#include "platform/gate.h"

namespace dormant::platform {
namespace {

Error NoSeccomp() { return Error{ENOSYS, "no seccomp on macOS: the exec/connect gate is unavailable"}; }

}  // namespace

Expected<std::unique_ptr<GateProgram>> CompileGate(const GateOptions&) { return NoSeccomp(); }
int InstallGateInChild(const GateProgram&, int) { return -ENOSYS; }
int SendListener(int, int) { return -ENOSYS; }
Expected<int> ReceiveListener(int, int) { return NoSeccomp(); }
long ServeBlocking(int, const GateDecider&, int, int) { return -ENOSYS; }
long ServeContinueForever(int, const GateJournal*) { return -ENOSYS; }
long ContinueWaiting(int, GateJournal*, bool* gone) {
  *gone = true;
  return -ENOSYS;
}

Expected<GateJournal> GateJournal::Create() { return NoSeccomp(); }
Expected<GateJournal> GateJournal::Open(int fd) {
  if (fd >= 0) close(fd);
  return NoSeccomp();
}
GateJournal::GateJournal(GateJournal&& o) noexcept : fd_(o.fd_), slots_(o.slots_) {
  o.fd_ = -1;
  o.slots_ = nullptr;
}
GateJournal& GateJournal::operator=(GateJournal&&) noexcept { return *this; }
GateJournal::~GateJournal() = default;
void GateJournal::Add(uint64_t) {}
void GateJournal::Remove(uint64_t) {}
std::vector<uint64_t> GateJournal::Held() const { return {}; }
void GateJournal::Beat() {}
int64_t GateJournal::last_beat_ms() const { return 0; }
void GateJournal::SetGuardianServing(bool) {}
bool GateJournal::guardian_serving() const { return false; }
void GateJournal::CountGuardianAnswers(uint64_t) {}
uint64_t GateJournal::guardian_answers() const { return 0; }
bool CanCreateUserNamespace() { return false; }
std::vector<std::string> SetuidHelpers(const std::string&) { return {}; }
std::optional<std::string> GateUnsafeReason(const std::string&) { return "no seccomp on macOS"; }

struct Gate::Impl {
  GateCounters counters;
};

Gate::Gate(uv_loop_t*, int listener_fd, GateDecider, int) : impl_(std::make_unique<Impl>()) {
  if (listener_fd >= 0) close(listener_fd);  // owned, as on Linux
}
Gate::~Gate() = default;
Expected<void> Gate::Start() { return NoSeccomp(); }
void Gate::SetJournal(GateJournal*) {}
bool Gate::Answer(uint64_t, Verdict) { return false; }
void Gate::Close() {}
bool Gate::finished() const { return true; }
size_t Gate::held() const { return 0; }
GateCounters Gate::counters() const { return impl_->counters; }

}  // namespace dormant::platform
