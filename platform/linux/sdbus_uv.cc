// Why a uv_prepare: sd_bus_call_method_async() and friends may leave bytes in
// sd-bus's write queue, and sd-bus reads several messages at once into its own
// buffer; neither shows on the fd. Processing and re-arming right before the
// loop blocks covers both, at no cost while the loop sleeps.
#include "platform/linux/sdbus_uv.h"

#include <poll.h>
#include <time.h>

#include <cerrno>
#include <cstring>

namespace dormant::platform {
namespace {

uint64_t NowMonotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

constexpr uint64_t kMethodCallTimeoutUsec = 3 * 1000 * 1000;

}  // namespace

Error BusError(const std::string& what, const sd_bus_error* e, int r) {
  std::string msg = what + ": ";
  if (e != nullptr && sd_bus_error_is_set(e)) {
    msg += e->message != nullptr ? e->message : e->name;
    if (e->name != nullptr) msg += std::string(" (") + e->name + ")";
  } else {
    msg += std::strerror(r < 0 ? -r : r);
  }
  return Error{r < 0 ? -r : r, msg};
}

Expected<std::unique_ptr<UvBus>> UvBus::Open(uv_loop_t* loop, Kind kind) {
  sd_bus* bus = nullptr;
  int r = kind == Kind::kSession ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);
  const char* what =
      kind == Kind::kSession ? "connect to the session bus" : "connect to the system bus";
  if (r < 0) return BusError(what, nullptr, r);
  sd_bus_set_method_call_timeout(bus, kMethodCallTimeoutUsec);
  std::unique_ptr<UvBus> self(new UvBus(loop, bus, kind));
  if (auto a = self->Attach(); !a)
    return Error{a.error().code, std::string(what) + ": " + a.error().message};
  return self;
}

Expected<void> UvBus::Attach() {
  int fd = sd_bus_get_fd(bus_);
  if (fd < 0) return BusError("sd_bus_get_fd", nullptr, fd);
  auto poll = MakePoll(loop_, fd, this);
  if (!poll) return poll.error();
  poll_ = std::move(*poll);
  timer_ = MakeTimer(loop_, this);
  auto* prep = new uv_prepare_t{};
  uv_prepare_init(loop_, prep);
  prep->data = this;
  prepare_ = UvHandle<uv_prepare_t>::Adopt(prep);
  uv_prepare_start(prep, [](uv_prepare_t* p) { static_cast<UvBus*>(p->data)->Process(); });
  lost_report_.Init(loop_, [this] {
    if (on_lost_) on_lost_(lost_why_);
  });
  Arm();
  return {};
}

UvBus::~UvBus() {
  poll_.reset();
  timer_.reset();
  prepare_.reset();
  lost_report_.Reset();
  // Flushes what is queued (a final RemoveWatch, a released lock) first.
  sd_bus_flush_close_unref(bus_);
}

void UvBus::Process() {
  if (lost_) return;
  for (;;) {
    int r = sd_bus_process(bus_, nullptr);
    if (r < 0) return Lost(BusError(std::string(what()) + " connection", nullptr, r));
    if (r == 0) break;
    if (lost_) return;  // a handler may have found the bus broken
  }
  if (sd_bus_is_open(bus_) <= 0)
    return Lost(Error{ECONNRESET, std::string(what()) + " connection closed"});
  Arm();
}

void UvBus::Arm() {
  int events = sd_bus_get_events(bus_);
  if (events < 0) return Lost(BusError(std::string(what()) + " connection", nullptr, events));
  int uv_events = UV_DISCONNECT;
  if (events & POLLIN) uv_events |= UV_READABLE;
  if (events & POLLOUT) uv_events |= UV_WRITABLE;
  uv_poll_start(poll_.get(), uv_events, [](uv_poll_t* p, int, int) {
    if (p->data != nullptr) static_cast<UvBus*>(p->data)->Process();
  });
  uint64_t until = 0;
  if (sd_bus_get_timeout(bus_, &until) < 0 || until == UINT64_MAX) {
    uv_timer_stop(timer_.get());
    return;
  }
  uint64_t now = NowMonotonicUsec();
  uint64_t delay_ms = until > now ? (until - now + 999) / 1000 : 0;
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<UvBus*>(t->data)->Process();
      },
      delay_ms, 0);
}

void UvBus::Lost(Error why) {
  if (lost_) return;
  lost_ = true;
  lost_why_ = std::move(why);
  poll_.reset();
  timer_.reset();
  prepare_.reset();
  lost_report_.Fire();
}

Expected<std::string> GetNameOwner(sd_bus* bus, const char* name) {
  sd_bus_error err = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                             "org.freedesktop.DBus", "GetNameOwner", &err, &reply, "s", name);
  if (r < 0) {
    Error e = BusError(std::string("GetNameOwner(") + name + ")", &err, r);
    sd_bus_error_free(&err);
    return e;
  }
  const char* owner = nullptr;
  r = sd_bus_message_read(reply, "s", &owner);
  std::string out = r >= 0 && owner != nullptr ? owner : "";
  sd_bus_message_unref(reply);
  if (out.empty()) return Error{EBADMSG, std::string("GetNameOwner(") + name + "): bad reply"};
  return out;
}

static Expected<BusSlot> AddMatch(sd_bus* bus, const std::string& rule, sd_bus_message_handler_t cb,
                                  void* userdata) {
  sd_bus_slot* slot = nullptr;
  int r = sd_bus_add_match(bus, &slot, rule.c_str(), cb, userdata);
  if (r < 0) return BusError("AddMatch(" + rule + ")", nullptr, r);
  return BusSlot(slot);
}

Expected<BusSlot> MatchNameOwnerChanged(sd_bus* bus, const char* name, sd_bus_message_handler_t cb,
                                        void* userdata) {
  std::string rule =
      "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
      "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" +
      std::string(name) + "'";
  return AddMatch(bus, rule, cb, userdata);
}

std::string ReadNewOwner(sd_bus_message* m) {
  const char* name = nullptr;
  const char* old_owner = nullptr;
  const char* new_owner = nullptr;
  if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || new_owner == nullptr)
    return "";
  return new_owner;
}

Expected<BusSlot> MatchPropertiesChanged(sd_bus* bus, const char* path, sd_bus_message_handler_t cb,
                                         void* userdata) {
  std::string rule = "type='signal',path='" + std::string(path) +
                     "',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'";
  return AddMatch(bus, rule, cb, userdata);
}

Expected<BusSlot> MatchSignal(sd_bus* bus, const char* path, const char* interface,
                              const char* member, sd_bus_message_handler_t cb, void* userdata) {
  std::string rule = "type='signal',path='" + std::string(path) + "',interface='" + interface +
                     "',member='" + member + "'";
  return AddMatch(bus, rule, cb, userdata);
}

bool SenderIs(sd_bus_message* m, const std::string& owner) {
  const char* sender = sd_bus_message_get_sender(m);
  return sender != nullptr && owner == sender;
}

}  // namespace dormant::platform
