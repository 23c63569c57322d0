// Why asynchronous calls only: the daemon may be slow (a bubble animation), be
// activated on first use, or hang; a blocking call would stop the supervisor's
// loop, and with it enforcement. Every call carries the bus's 3 s timeout, so a
// hung daemon costs an error reply later, never a wait now.
#include "platform/linux/notifier_dbus.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

namespace dormant::platform {
namespace {

constexpr const char* kService = "org.freedesktop.Notifications";
constexpr const char* kPath = "/org/freedesktop/Notifications";
constexpr const char* kInterface = "org.freedesktop.Notifications";
constexpr int32_t kExpireDefault = -1;  // the daemon's own timeout

uint8_t UrgencyByte(Urgency u) {
  switch (u) {
    case Urgency::kLow: return 0;
    case Urgency::kNormal: return 1;
    case Urgency::kCritical: return 2;
  }
  return 1;
}

}  // namespace

std::string EscapeNotificationMarkup(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

DbusNotifier::DbusNotifier(uv_loop_t* loop) : loop_(loop) {
  if (!Connect()) return;
  // The probe: it finds a missing daemon at start (and activates one that is
  // only activatable), and says whether the body is read as markup.
  sd_bus_slot* slot = nullptr;
  pending_.push_back({this, "", nullptr});
  int r = sd_bus_call_method_async(bus_->get(), &slot, kService, kPath, kInterface, "GetCapabilities",
                                   &DbusNotifier::OnReply, &pending_.back(), "");
  if (r < 0) {
    pending_.pop_back();
    Unavailable(BusError("GetCapabilities", nullptr, r).message);
    return;
  }
  pending_.back().slot.reset(slot);
}

Expected<void> DbusNotifier::Connect() {
  auto bus = UvBus::Open(loop_, UvBus::Kind::kSession);
  if (!bus) {
    Unavailable("no session bus (" + bus.error().message + ")");
    return bus.error();
  }
  bus_ = std::move(*bus);
  bus_->SetOnLost([this](const Error& e) {
    Disconnect();  // the next Notify connects again
    Unavailable(e.message);
  });
  return {};
}

void DbusNotifier::Disconnect() {
  pending_.clear();  // the slots first: each holds the bus
  bus_.reset();
}

void DbusNotifier::Close() {
  closed_ = true;
  Disconnect();
}

Expected<void> DbusNotifier::Notify(const std::string& subject, const std::string& summary,
                                    const std::string& body, Urgency urgency) {
  if (closed_) return Error{EBADF, "the notifier is closed"};
  if (!bus_) {
    if (auto c = Connect(); !c) return c.error();
  }
  return Send(subject, summary, body, urgency);
}

Expected<void> DbusNotifier::Send(const std::string& subject, const std::string& summary,
                                  const std::string& body, Urgency urgency) {
  uint32_t replaces = 0;
  if (auto it = ids_.find(subject); it != ids_.end()) replaces = it->second;
  std::string text = markup_ ? EscapeNotificationMarkup(body) : body;
  pending_.push_back({this, subject, nullptr});
  sd_bus_slot* slot = nullptr;
  // Notify(app_name s, replaces_id u, app_icon s, summary s, body s,
  //        actions as, hints a{sv}, expire_timeout i) -> id u
  int r = sd_bus_call_method_async(bus_->get(), &slot, kService, kPath, kInterface, "Notify",
                                   &DbusNotifier::OnReply, &pending_.back(), "susssasa{sv}i",
                                   "dormant", replaces, "", summary.c_str(), text.c_str(), 0, 1,
                                   "urgency", "y", UrgencyByte(urgency), kExpireDefault);
  if (r < 0) {
    pending_.pop_back();
    Error e = BusError("Notify", nullptr, r);
    Unavailable(e.message);
    return e;
  }
  pending_.back().slot.reset(slot);
  return {};
}

int DbusNotifier::OnReply(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* call = static_cast<Call*>(userdata);
  call->self->Finish(call, m);  // last: it frees `call`
  return 0;
}

void DbusNotifier::Finish(Call* call, sd_bus_message* m) {
  const bool probe = call->subject.empty();
  const std::string method = probe ? "GetCapabilities" : "Notify";
  if (const sd_bus_error* e = sd_bus_message_get_error(m)) {
    ids_.clear();  // a daemon that comes back knows none of our bubbles
    if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
        sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
      Unavailable("no notification daemon on the session bus (" + std::string(kService) +
                  " has no owner)");
    } else {
      Unavailable(BusError(method, e, sd_bus_message_get_errno(m)).message);
    }
  } else if (probe) {
    // An array of capability strings; "body-markup" says the body is markup.
    markup_ = false;
    if (sd_bus_message_enter_container(m, 'a', "s") >= 0) {
      const char* cap = nullptr;
      while (sd_bus_message_read(m, "s", &cap) > 0) {
        if (cap != nullptr && std::strcmp(cap, "body-markup") == 0) markup_ = true;
      }
      sd_bus_message_exit_container(m);
    }
    Available();
  } else {
    uint32_t id = 0;
    if (sd_bus_message_read(m, "u", &id) > 0 && id != 0) ids_[call->subject] = id;
    ++delivered_;
    spdlog::debug("desktop notification {} shown ({})", id, call->subject);
    Available();
  }
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (&*it == call) {
      pending_.erase(it);  // sd-bus holds the slot until this callback returns
      break;
    }
  }
}

void DbusNotifier::Unavailable(const std::string& why) {
  unavailable_ = why;
  if (reported_) return;
  reported_ = true;
  spdlog::info("desktop notifications unavailable: {}; warnings go to this log only", why);
}

void DbusNotifier::Available() {
  unavailable_.clear();
  if (!reported_) return;
  reported_ = false;
  spdlog::info("desktop notifications available again");
}

std::unique_ptr<Notifier> CreateNotifier(uv_loop_t* loop) { return std::make_unique<DbusNotifier>(loop); }

}  // namespace dormant::platform
