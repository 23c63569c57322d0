// Internal to the Linux gate: receiving, reading and answering one seccomp
// notification. Shared by the libuv Gate and the blocking servers.
#pragma once

#include <linux/seccomp.h>

#include <cstdint>

#include "platform/gate.h"

namespace dormant::platform::gate_internal {

/// Receives one notification if one is waiting, without ever blocking.
/// Returns 0 (got one), -EAGAIN (none waiting), -EPIPE (every process under
/// the filter is gone), -ENOENT (its caller went away first) or another -errno.
int Receive(int listener, seccomp_notif* out);

/// Answers `id`: continue when `error` is 0, else fail the call with `error`.
/// Returns 0 or -errno (-ENOENT: the caller is gone or was interrupted).
int Respond(int listener, uint64_t id, int error);

/// True while notification `id` still waits for an answer.
bool IdValid(int listener, uint64_t id);

enum class ReadResult {
  kRequest,  ///< `req` is filled in and still valid: decide it
  kPass,     ///< not for deciding (a connect that is not IPv4/IPv6): continue
  kStale,    ///< the caller went away while we read: nothing to answer
  kError,    ///< its memory could not be read: continue and count
};

/// Reads what the caller passed (path and argv, or the socket address) from
/// its memory, then checks that the notification is still valid, so what we
/// read belongs to that call and not to a pid reused meanwhile.
ReadResult ReadRequest(int listener, const seccomp_notif& n, GateRequest* req);

/// The errno a refusal gives: EPERM for exec, ECONNREFUSED for connect.
int RefusalErrno(GateRequest::Kind kind);

/// Whether a syscall number is one the gate notifies on.
bool IsExec(int nr);
bool IsConnect(int nr);

}  // namespace dormant::platform::gate_internal
