#!/usr/bin/python3
"""End-to-end test of desktop notifications ([notify] in docs/policy.md) through `dormant run`: a private
dbus-daemon is the session bus, python3-dbusmock's notification_daemon template is the desktop's notification
daemon, and the Notify calls it records are read back over D-Bus.

  test_notify.py CASE --dormant PATH [--keep]

The supervised app is `sh -c 'sleep 600; exit 0'`; its `sleep` is the provider (a [[provider]] matcher for
it), the idle source is manual, and idle.warn_after is 2 s (suspend_after 1 h), so the enforcer's idle warning
comes without any real provider CLI.
  idle-warning  the warning arrives as Notify(app_name "dormant", summary "dormant", the log's reason as body,
                urgency 1, default timeout); after `dormant activity` the next warning replaces the first bubble
                (replaces_id = the id the daemon returned)
  desktop-off   with [notify] desktop = false the warning is logged and nothing reaches the daemon
  no-daemon     with a session bus but no notification daemon, dormant says once, at info level, that desktop
                notifications are unavailable and why, keeps enforcing (two warnings logged), and says nothing more
  budget        the real `codex app-server` (as in test_budget.py) against the Responses mock, a budget of 2000
                tokens with warn_at = [0.5]: the first turn (1234 tokens) crosses 50% and gives a normal-urgency
                Notify naming the budget; the second exhausts it, the app-server is ended, and a critical
                Notify says why and which pid was ended
Exit status 0 = pass; 1 = fail, with the step and what was observed.
"""

import argparse
import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True
from e2e_lib import Dormant, Failure, check, log, run_test, wait_until  # noqa: E402

import dbus  # noqa: E402 - python3-dbus, which python3-dbusmock needs too

NAME = "notify"
BUS_NAME = "org.freedesktop.Notifications"
BUS_PATH = "/org/freedesktop/Notifications"
WARN_TEXT = "providers will be suspended"


def policy(desktop: bool) -> str:
    return ('[idle]\nsource = "manual"\nsuspend_after = "1h"\nkill_after = "2h"\nwarn_after = "2s"\n\n'
            '[[provider]]\nname = "sleeper"\nexe = "sleep"\nargs = ["600"]\n\n'
            f'[notify]\ndesktop = {"true" if desktop else "false"}\n')


def start_bus(env) -> str:
    """A private session dbus-daemon, marked as this test's; returns its address."""
    env.spawn("dbus", ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"])
    address = wait_until(lambda: open(env.path("dbus.out")).readline().strip(), 20, "dbus-daemon's address")
    log(f"session bus {address}")
    return address


def start_daemon(env, address: str):
    """dbusmock's notification_daemon on the bus; returns its mock interface."""
    env.spawn("mock_notify", ["/usr/bin/python3", "-m", "dbusmock", "--template", "notification_daemon"],
              env=dict(env.env, DBUS_SESSION_BUS_ADDRESS=address))
    conn = dbus.bus.BusConnection(address)
    wait_until(lambda: conn.name_has_owner(BUS_NAME), 20, f"{BUS_NAME} on the bus")
    return dbus.Interface(conn.get_object(BUS_NAME, BUS_PATH), "org.freedesktop.DBus.Mock")


def notify_calls(mock):
    """Every Notify the daemon got: dicts of its arguments."""
    out = []
    for _when, args in mock.GetMethodCalls("Notify"):
        app, replaces, _icon, summary, body, _actions, hints, timeout = args
        out.append({"app_name": str(app), "replaces_id": int(replaces), "summary": str(summary),
                    "body": str(body), "urgency": int(hints["urgency"]) if "urgency" in hints else None,
                    "expire_timeout": int(timeout)})
    return out


def start_dormant(env, a, address: str, desktop: bool):
    path = env.path("policy.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(policy(desktop))
    dormant = Dormant(env, a.dormant, NAME, "sleeper")
    proc = env.spawn("dormant", [a.dormant, "run", "--policy", path, "--name", NAME, "--",
                                 "/bin/sh", "-c", "sleep 600; exit 0"],
                     env=dict(env.env, DBUS_SESSION_BUS_ADDRESS=address))
    log(f"dormant run started, pid {proc.pid}")

    def provider():
        if proc.poll() is not None:
            raise Failure(f"dormant run exited early with status {proc.returncode}")
        st = dormant.status()
        return next((p for p in st["providers"] if p["name"] == "sleeper"), None)
    prov = wait_until(provider, 30, "dormant to find the sleep provider")
    check(prov["state"] == "running", "the provider runs", prov)
    return dormant, proc


def dormant_log(env) -> str:
    with open(env.path("dormant.err"), encoding="utf-8", errors="replace") as f:
        return f.read()


def warnings_logged(env) -> int:
    return sum(1 for line in dormant_log(env).splitlines() if " warning: " in line and WARN_TEXT in line)


def stop(proc) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        raise Failure("dormant run did not exit within 30 s of SIGTERM")
    log(f"dormant exited with status {proc.returncode}")


def idle_warning(env, a) -> None:
    address = start_bus(env)
    mock = start_daemon(env, address)
    dormant, proc = start_dormant(env, a, address, desktop=True)
    calls = wait_until(lambda: notify_calls(mock), 30, "the idle warning's Notify call")
    first = calls[0]
    check(first["app_name"] == "dormant" and first["summary"] == "dormant", "app_name and summary are dormant",
          first)
    check(WARN_TEXT in first["body"] and first["body"].startswith("idle for "),
          "the body is the enforcer's warning", first)
    check(first["urgency"] == 1 and first["expire_timeout"] == -1, "normal urgency, the daemon's own timeout",
          first)
    check(first["replaces_id"] == 0, "the first bubble replaces nothing", first)
    check(warnings_logged(env) == 1, "the warning is logged too", dormant_log(env))

    # The user comes back and goes away again: the next warning replaces the first bubble (the mock numbered
    # it 1), rather than piling up.
    rc, out, err = dormant.verb("activity")
    check(rc == 0, "dormant activity exits 0", f"{rc} {out} {err}")
    calls = wait_until(lambda: (lambda c: c if len(c) >= 2 else None)(notify_calls(mock)), 30,
                       "the second warning's Notify call")
    check(calls[1]["replaces_id"] == 1 and WARN_TEXT in calls[1]["body"],
          "the second idle warning replaces the first bubble", calls)
    check("desktop notifications unavailable" not in dormant_log(env), "nothing says notifications are off")
    stop(proc)
    check(len(notify_calls(mock)) == 2, "no other notification (no idle suspend happened)", notify_calls(mock))


def desktop_off(env, a) -> None:
    address = start_bus(env)
    mock = start_daemon(env, address)
    dormant, proc = start_dormant(env, a, address, desktop=False)
    wait_until(lambda: warnings_logged(env) >= 1, 30, "the idle warning in dormant's log")
    # The warning's notification would have been sent on the same loop turn as the log line; a later turn
    # (a status round trip) would have flushed it to the bus. The daemon got nothing.
    dormant.status()
    stop(proc)
    check(notify_calls(mock) == [], "with desktop = false the daemon got no Notify", notify_calls(mock))
    check(mock.GetCalls() == [], "nor any other call (no probe either)", mock.GetCalls())


def no_daemon(env, a) -> None:
    address = start_bus(env)
    dormant, proc = start_dormant(env, a, address, desktop=True)
    wait_until(lambda: warnings_logged(env) >= 1, 30, "the first idle warning in dormant's log")
    rc, out, err = dormant.verb("activity")
    check(rc == 0, "dormant activity exits 0", f"{rc} {out} {err}")
    wait_until(lambda: warnings_logged(env) >= 2, 30, "the second idle warning in dormant's log")
    st = dormant.status()
    check(any(p["name"] == "sleeper" and p["state"] == "running" for p in st["providers"]),
          "enforcement goes on: the provider is still supervised and running", st["providers"])
    stop(proc)
    lines = [line for line in dormant_log(env).splitlines() if "desktop notifications unavailable" in line]
    check(len(lines) == 1, "the missing daemon is reported exactly once", lines)
    check(" info: desktop notifications unavailable" in lines[0] and "no notification daemon" in lines[0],
          "at info level, saying why", lines[0])


def budget(env, a) -> None:
    import threading
    from e2e_lib import KeepActive
    from test_budget import idle_section, provider_section, start
    address = start_bus(env)
    mock = start_daemon(env, address)
    env.env["DBUS_SESSION_BUS_ADDRESS"] = address  # dormant's session bus (and its children's)
    os.makedirs(os.path.join(env.codex_home, "sessions"), exist_ok=True)
    policy_text = (idle_section() + '\n[[budget]]\nname = "tiny"\nwindow = "1h"\nscope = "supervised"\n'
                   'limit_tokens = 2000\nwarn_at = [0.5]\non_exhausted = "kill"\nlockout = true\n'
                   + provider_section())
    run, _port = start(env, a, "notify", policy_text)
    with KeepActive(run.dormant):  # the user is there: these are budget notices, not idle ones
        turn = run.command("turn 90 first", timeout=120)
        check(turn.get("status") == "completed", "the first turn (1234 tokens) completes", turn)
        calls = wait_until(lambda: notify_calls(mock), 30, "the warn_at Notify call")
        check(len(calls) == 1 and "budget 'tiny' passed 50%" in calls[0]["body"] and calls[0]["urgency"] == 1
              and calls[0]["app_name"] == "dormant", "crossing warn_at 0.5 gives one normal-urgency notification",
              calls)
        launcher = run.launcher
        worker = threading.Thread(target=lambda: run.command("turn 60 second", timeout=80), daemon=True)
        worker.start()
        calls = wait_until(lambda: (lambda c: c if len(c) >= 2 else None)(notify_calls(mock)), 60,
                           "the exhaustion's Notify call")
    ended = calls[1]
    check(ended["urgency"] == 2 and "budget 'tiny' exhausted" in ended["body"]
          and f"codex (pid {launcher}): ended" in ended["body"],
          "exhaustion gives a critical notification naming the budget and the ended app-server", ended)
    check(ended["replaces_id"] == 1, "it replaces the budget's warning bubble", calls)
    worker.join(80)
    reply = run.command("exit 0")
    check(reply.get("exiting") == 0, "the app is told to exit", reply)
    check(run.proc.wait(60) == 0, "dormant exits 0")


CASES = {"idle-warning": idle_warning, "desktop-off": desktop_off, "no-daemon": no_daemon, "budget": budget}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--dormant", required=True)
    ap.add_argument("--codex", help="budget: default the pinned one under .deps/npm (tools/npm-deps.sh)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    a.dormant = os.path.abspath(a.dormant)
    a.codex = os.path.abspath(a.codex) if a.codex else None
    run_test(f"notify-{a.case}", lambda env: CASES[a.case](env, a), a.keep)


if __name__ == "__main__":
    main()
