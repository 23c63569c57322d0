#!/usr/bin/python3
"""End-to-end test of issue 2 with a real provider CLI: dormant supervises an app (app.py) that runs the
provider as its child against a local mock model, the way a desktop app does.
  --provider codex   `codex app-server` (npm's node launcher plus the native binary below it), JSON-RPC
  --provider claude  Claude Code in stream-json mode (`claude --input-format stream-json ...`)

  test_idle_cycle.py --dormant PATH [--provider codex] [--suspend-after 3] [--kill-after 20] [--keep]

Flow: dormant run with a manual-idle policy -> status shows the provider running -> after suspend_after every
process of its subtree is stopped and `initialize` gets no reply within 1 s, while the app runs on ->
`dormant activity` -> every process runs again, `initialize` is answered and a turn completes against the mock
-> idle past kill_after -> the provider's whole tree is gone and the app is alive -> SIGTERM to dormant -> the
app exits 3, dormant exits 3, nothing is left. Exit status 0 = pass; 1 = fail, with the step and what was
observed.
"""

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True
from e2e_lib import (Dormant, Failure, KeepActive, SupervisedApp, alive, check, idle_policy, is_stopped,  # noqa: E402
                     log, npm_binary, run_test, wait_until)

NAME = "e2e"
APP_EXIT = 3
STATES = ("running", "suspended", "paused", "terminating", "killed")


def status_problems(st: dict, app_pid: int) -> list:
    """Deviations from the `dormant status --json` contract that the e2e tests rely on."""
    problems = []
    for key in ("name", "app", "idle_for_ms", "idle_source", "paused", "providers"):
        if key not in st:
            problems.append(f"missing key {key!r}")
    if st.get("name") != NAME:
        problems.append(f"name is {st.get('name')!r}, expected {NAME!r}")
    app = st.get("app", {})
    if app.get("pid") != app_pid or app.get("running") is not True:
        problems.append(f"app is {app}, expected pid {app_pid} running")
    if st.get("idle_source") != "manual":
        problems.append(f"idle_source is {st.get('idle_source')!r}")
    if not isinstance(st.get("idle_for_ms"), int):
        problems.append("idle_for_ms is not an integer")
    if st.get("paused") is not False:
        problems.append(f"paused is {st.get('paused')!r}")
    for prov in st.get("providers", []):
        for key in ("pid", "name", "state", "since", "reason", "next"):
            if key not in prov:
                problems.append(f"provider {prov.get('pid')} lacks {key!r}")
        if prov.get("state") not in STATES:
            problems.append(f"provider {prov.get('pid')} has state {prov.get('state')!r}")
        try:
            datetime.datetime.fromisoformat(str(prov.get("since")).replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"provider {prov.get('pid')} has since {prov.get('since')!r}, not ISO-8601")
        nxt = prov.get("next")
        if nxt is not None and (nxt.get("action") not in ("suspend", "kill", "terminate")
                                or not isinstance(nxt.get("in_ms"), int)):
            problems.append(f"provider {prov.get('pid')} has next {nxt!r}")
    return problems


def start_provider_mock(env, a):
    """The provider's argv under the app, with its mock running and the scratch environment pointing at it."""
    binary = npm_binary(a.provider, a.binary)
    if a.provider == "codex":
        env.write_codex_config(env.start_mock("responses", "--quiet"))
        return [binary, "app-server"]
    env.use_claude_mock(env.start_mock("messages", "--quiet"))
    return [binary, "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]


def main(env, a) -> None:
    argv = start_provider_mock(env, a)
    check(os.access(a.dormant, os.X_OK), f"dormant binary exists ({a.dormant})")
    dormant = Dormant(env, a.dormant, NAME, a.provider)
    run = SupervisedApp(env, dormant, idle_policy(f"{a.suspend_after}s", f"{a.kill_after}s", f"{a.kill_grace}s",
                                                  a.provider),
                        argv, app_exit=APP_EXIT, min_tree=2 if a.provider == "codex" else 1, protocol=a.provider)

    st = wait_until(lambda: (lambda s: s if any(p.get("pid") == run.launcher for p in s["providers"]) else None)(
        dormant.status()), 30, f"dormant status to list the provider with pid {run.launcher}")
    log(f"status: {json.dumps(st)}")
    problems = status_problems(st, run.app_pid)
    check(not problems, "dormant status --json has the documented shape", "; ".join(problems))
    check(dormant.provider(run.launcher) is not None,
          f"the app's child (npm's {a.provider} launcher) is the provider, named {a.provider}", st["providers"])
    tree = run.tree()
    check(all(p["pid"] in tree for p in st["providers"]), "every provider listed is inside the launcher's subtree",
          st["providers"])

    # Idle past suspend_after: the whole subtree stops, the app does not.
    wait_until(lambda: dormant.provider(run.launcher)["state"] == "suspended", a.suspend_after + 30,
               "the provider to be reported suspended")
    run.wait_stopped("idle past suspend_after")
    st = dormant.status()
    prov = dormant.provider(run.launcher)
    check(prov["reason"] != "", "the suspended provider's reason is given", prov)
    check(prov["next"] is not None and prov["next"]["action"] in ("kill", "terminate")
          and 0 <= prov["next"]["in_ms"] <= a.kill_after * 1000,
          "the suspended provider's next action is its end, within kill_after", prov)
    check(st["idle_for_ms"] >= a.suspend_after * 1000, "idle_for_ms is at least suspend_after", st["idle_for_ms"])
    probe = run.command("initialize 1")
    check(not probe["answered"], "a suspended provider does not answer initialize within 1 s", probe)

    # Activity: every process runs again and the provider answers. Then, with the user kept active so that no
    # new suspend races the checks on a slow machine, a turn runs against the mock.
    rc, out, err = dormant.verb("activity")
    check(rc == 0, "dormant activity exits 0", f"{rc} {out} {err}")
    run.wait_running("after dormant activity")
    with KeepActive(dormant):
        probe = run.command("initialize 20")
        check(probe["answered"], "after activity the provider answers initialize", probe)
        kind = "responses" if a.provider == "codex" else "messages"
        served_before = len(env.served(kind))
        turn = run.command("turn 90 hi", timeout=120)
        check(turn["completed"] and len(env.served(kind)) > served_before,
              "a turn completes against the mock after activity", turn)
        prov = dormant.provider(run.launcher)
        check(prov is not None and prov["state"] == "running", "status shows the provider running again", prov)
        run.record(run.tree())

    # Stay idle past kill_after: the tree is ended, the app lives on.
    recorded = dict(env.recorded)
    wait_until(lambda: not any(alive(p, s) for p, s in recorded.items()),
               a.kill_after + a.kill_grace + 60, "the provider's whole tree to be gone after kill_after",
               interval=0.25)
    check(True, f"provider tree gone after kill_after: {sorted(recorded)}")
    check(alive(run.app_pid) and not is_stopped(run.app_pid), "the app is still alive and running")
    # A multi-threaded leader shows as a zombie before its last thread is done; the app can reap it only then.
    app_st = wait_until(lambda: (lambda r: r if r["child_running"] is False else None)(run.command("status")), 20,
                        "the app to see its child end")
    check(app_st["child_running"] is False, "the app saw its child end", app_st)
    st = dormant.status()
    check(st["app"]["running"] is True and st["app"]["pid"] == run.app_pid, "dormant still reports the app running",
          st["app"])
    prov = dormant.provider(run.launcher)
    check(prov is None or prov["state"] == "killed", "status lists the provider as killed or no more", prov)

    # SIGTERM to dormant: forwarded to the app, which exits APP_EXIT; dormant exits with the same status.
    run.proc.send_signal(signal.SIGTERM)
    try:
        code = run.proc.wait(30)
    except subprocess.TimeoutExpired:
        raise Failure("dormant did not exit within 30 s of SIGTERM")
    check(code == APP_EXIT, f"dormant exits with the app's status ({APP_EXIT}) after SIGTERM", code)
    wait_until(lambda: not alive(run.app_pid), 10, "the app to be gone")
    wait_until(lambda: not env.leftovers(), 10, "no process of the test to be left")
    check(True, "nothing is left behind")
    rc, _out, _err = dormant.verb("status")
    check(rc != 0, "dormant status finds no supervisor any more", rc)
    sock_dir = os.path.join(env.runtime, "dormant")
    remaining = os.listdir(sock_dir) if os.path.isdir(sock_dir) else []
    check(not remaining, "the control socket is removed", remaining)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dormant", required=True)
    p.add_argument("--provider", choices=("codex", "claude"), default="codex")
    p.add_argument("--binary", help="the provider CLI; default: the pinned one under .deps/npm (tools/npm-deps.sh)")
    p.add_argument("--suspend-after", type=int, default=3)
    p.add_argument("--kill-after", type=int, default=20)
    p.add_argument("--kill-grace", type=int, default=2)
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args()
    args.dormant = os.path.abspath(args.dormant)
    args.binary = os.path.abspath(args.binary) if args.binary else None
    run_test(f"idle-cycle-{args.provider}", lambda env: main(env, args), args.keep)
