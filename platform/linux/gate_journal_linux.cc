// The held-id journal: a memfd page of atomic slots, mapped shared, so the
// guardian sees what the supervisor held even after a SIGKILL. A slot holds
// id + 1 (0: free); ids start near 0 or at random, and id + 1 wraps only for
// the one id 2^64 - 1, which is then not recorded. After the slots, the
// supervisor's heartbeat and the guardian's stand-in state (see gate.h).
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "platform/gate.h"

namespace dormant::platform {
namespace {

using Slot = std::atomic<uint64_t>;
static_assert(Slot::is_always_lock_free, "journal slots must be lock-free to be shared");
static_assert(std::atomic<int64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free);

struct Page {
  Slot slots[GateJournal::kSlots];
  std::atomic<int64_t> beat_ms;            // the supervisor's last beat (CLOCK_MONOTONIC)
  std::atomic<uint32_t> guardian_serving;  // 1 while the guardian stands in
  std::atomic<uint64_t> guardian_answers;
};
constexpr size_t kBytes = sizeof(Page);  // zero-filled by ftruncate: all free, no beat

Slot* Slots(void* p) { return static_cast<Page*>(p)->slots; }
Page* PageOf(void* p) { return static_cast<Page*>(p); }

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Expected<void*> Map(int fd) {
  void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Error{errno, std::string("mmap(gate journal): ") + std::strerror(errno)};
  return p;
}

}  // namespace

Expected<GateJournal> GateJournal::Create() {
  int fd = memfd_create("dormant-gate-journal", MFD_CLOEXEC);
  if (fd < 0) return Error{errno, std::string("memfd_create: ") + std::strerror(errno)};
  if (ftruncate(fd, kBytes) != 0) {
    int e = errno;
    close(fd);
    return Error{e, std::string("ftruncate(gate journal): ") + std::strerror(e)};
  }
  return Open(fd);
}

Expected<GateJournal> GateJournal::Open(int fd) {
  auto p = Map(fd);
  if (!p) {
    close(fd);
    return p.error();
  }
  return GateJournal(fd, *p);
}

GateJournal::GateJournal(GateJournal&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), slots_(std::exchange(o.slots_, nullptr)) {}

GateJournal& GateJournal::operator=(GateJournal&& o) noexcept {
  if (this != &o) {
    this->~GateJournal();
    fd_ = std::exchange(o.fd_, -1);
    slots_ = std::exchange(o.slots_, nullptr);
  }
  return *this;
}

GateJournal::~GateJournal() {
  if (slots_ != nullptr) munmap(slots_, kBytes);
  if (fd_ >= 0) close(fd_);
}

void GateJournal::Add(uint64_t id) {
  if (slots_ == nullptr || id + 1 == 0) return;
  Slot* s = Slots(slots_);
  for (size_t i = 0; i < kSlots; ++i) {
    uint64_t free = 0;
    if (s[i].compare_exchange_strong(free, id + 1)) return;
  }
}

void GateJournal::Remove(uint64_t id) {
  if (slots_ == nullptr) return;
  Slot* s = Slots(slots_);
  for (size_t i = 0; i < kSlots; ++i) {
    uint64_t expected = id + 1;
    if (s[i].compare_exchange_strong(expected, 0)) return;
  }
}

std::vector<uint64_t> GateJournal::Held() const {
  std::vector<uint64_t> ids;
  if (slots_ == nullptr) return ids;
  Slot* s = Slots(slots_);
  for (size_t i = 0; i < kSlots; ++i) {
    uint64_t v = s[i].load();
    if (v != 0) ids.push_back(v - 1);
  }
  return ids;
}

}  // namespace dormant::platform

namespace dormant::platform {

// Sequentially consistent, all four: the supervisor beats then reads the
// flag, the guardian sets the flag then reads the beat, and at least one of
// them must see the other's write (see gate_server_linux.cc).
void GateJournal::Beat() {
  if (slots_ != nullptr) PageOf(slots_)->beat_ms.store(NowMs());
}

int64_t GateJournal::last_beat_ms() const {
  return slots_ == nullptr ? 0 : PageOf(slots_)->beat_ms.load();
}

void GateJournal::SetGuardianServing(bool serving) {
  if (slots_ != nullptr) PageOf(slots_)->guardian_serving.store(serving ? 1 : 0);
}

bool GateJournal::guardian_serving() const {
  return slots_ != nullptr && PageOf(slots_)->guardian_serving.load() != 0;
}

void GateJournal::CountGuardianAnswers(uint64_t n) {
  if (slots_ != nullptr) PageOf(slots_)->guardian_answers.fetch_add(n);
}

uint64_t GateJournal::guardian_answers() const {
  return slots_ == nullptr ? 0 : PageOf(slots_)->guardian_answers.load();
}

}  // namespace dormant::platform
