#!/usr/bin/python3
"""More end-to-end cases of issue 2 with the real `codex app-server` under dormant:

  test_codex_lifecycle.py --dormant PATH pause-then-app-exits
      `dormant pause` stops the subtree at once (status: paused, provider paused), `dormant activity` does not
      lift it, `dormant resume` runs it again (initialize answered); paused again, the app exits 4 leaving its
      stopped provider behind: dormant exits 4 and ends the leftover tree (SIGCONT, SIGTERM, SIGKILL), nothing
      is orphaned or left stopped.
  test_codex_lifecycle.py --dormant PATH supervisor-killed
      with the provider suspended, dormant is SIGKILLed: no provider process stays stopped, the app keeps
      running and its app-server answers initialize.
  test_codex_lifecycle.py --dormant PATH spawn-while-suspended
      with the provider suspended, the app starts a second app-server: it is suspended on sight (no answer to
      initialize); `dormant activity` resumes both; the app exits 0 leaving both: dormant exits 0, nothing left.
"""

import argparse
import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True
from e2e_lib import (Dormant, Failure, KeepActive, SupervisedApp, alive, check, codex_policy,  # noqa: E402
                     describe, is_stopped, log, npm_binary, run_test, subtree, wait_until)

APP_EXIT = 4


def start(env, a, name: str, suspend_after: str) -> SupervisedApp:
    codex = npm_binary("codex", a.codex)
    check(os.access(a.dormant, os.X_OK), f"dormant binary exists ({a.dormant})")
    env.write_codex_config(env.start_mock("responses", "--quiet"))
    dormant = Dormant(env, a.dormant, name)
    run = SupervisedApp(env, dormant, codex_policy(suspend_after, "1h", "2s"), [codex, "app-server"],
                        app_exit=APP_EXIT)
    return run


def pause_then_app_exits(env, a) -> None:
    run = start(env, a, "pause", "1h")
    dormant = run.dormant
    rc, out, err = dormant.verb("pause")
    check(rc == 0, "dormant pause exits 0", f"{rc} {out} {err}")
    run.wait_stopped("after dormant pause")
    st = dormant.status()
    prov = dormant.provider(run.launcher)
    check(st.get("paused") is True and prov and prov["state"] == "paused",
          "status shows paused and the provider paused", st)
    probe = run.command("initialize 1")
    check(not probe["answered"], "a paused app-server does not answer initialize within 1 s", probe)
    # Activity resumes idle-suspended providers only: a pause holds until `dormant resume`.
    rc, out, err = dormant.verb("activity")
    check(rc == 0, "dormant activity while paused exits 0", f"{rc} {out} {err}")
    st = dormant.status()
    check(st.get("paused") is True and dormant.provider(run.launcher)["state"] == "paused"
          and all(is_stopped(p) for p in run.tree()), "activity does not lift a pause",
          f"{st} {describe(run.tree())}")

    rc, out, err = dormant.verb("resume")
    check(rc == 0, "dormant resume exits 0", f"{rc} {out} {err}")
    run.wait_running("after dormant resume")
    probe = run.command("initialize 20")
    check(probe["answered"], "after resume the app-server answers initialize", probe)
    st = dormant.status()
    check(st.get("paused") is False and dormant.provider(run.launcher)["state"] == "running",
          "status shows not paused and the provider running", st)
    run.record(run.tree())

    rc, out, err = dormant.verb("pause")
    check(rc == 0, "dormant pause again exits 0", f"{rc} {out} {err}")
    run.wait_stopped("paused again")
    tree = dict(env.recorded)
    reply = run.command(f"exit {APP_EXIT}")
    check(reply.get("exiting") == APP_EXIT, "the app is told to exit, leaving its stopped provider", reply)
    try:
        code = run.proc.wait(60)
    except subprocess.TimeoutExpired:
        raise Failure(f"dormant did not exit within 60 s of its app; left: {describe(env.leftovers())}")
    check(code == APP_EXIT, f"dormant exits with the app's status ({APP_EXIT})", code)
    wait_until(lambda: not [p for p, s in tree.items() if alive(p, s)], 10,
               f"the stopped provider tree the app left behind to be ended ({describe(tree)})")
    check(True, "the stopped provider tree the app left behind was ended")
    wait_until(lambda: not env.leftovers(), 10, "no process of the test to be left")
    check(True, "nothing is left behind")


def supervisor_killed(env, a) -> None:
    run = start(env, a, "killed", "2s")
    wait_until(lambda: run.dormant.provider(run.launcher)["state"] == "suspended", 40,
               "the codex provider to be reported suspended")
    run.wait_stopped("idle past suspend_after")
    run.record(run.tree())
    os.kill(run.proc.pid, signal.SIGKILL)
    code = run.proc.wait(30)
    check(code == -signal.SIGKILL, "dormant died of SIGKILL", code)
    log(f"after the SIGKILL: {describe(run.tree())}")
    run.wait_running("after dormant was SIGKILLed", timeout=20)
    check(alive(run.app_pid) and not is_stopped(run.app_pid), "the app keeps running", describe([run.app_pid]))
    probe = run.command("initialize 20")
    check(probe["answered"], "the app-server answers initialize without dormant", probe)
    reply = run.command("exit 0")
    check(reply.get("exiting") == 0, "the app is told to exit", reply)
    wait_until(lambda: not alive(run.app_pid), 20, "the app to exit")
    # Without dormant nothing ends the app-server but its own stdin closing; give it the time it needs.
    wait_until(lambda: not env.leftovers(), 30, "the app-server to end with its stdin closed")
    check(True, "nothing is left behind")


def spawn_while_suspended(env, a) -> None:
    run = start(env, a, "spawn", "2s")
    dormant = run.dormant
    wait_until(lambda: dormant.provider(run.launcher)["state"] == "suspended", 40,
               "the first provider to be reported suspended")
    run.wait_stopped("the first provider, idle past suspend_after")
    first = run.launcher
    reply = run.spawn()
    check(reply.get("previous_pid") == first, "the app starts a second app-server while the first is suspended",
          reply)
    run.launcher = reply["child_pid"]
    run.record(run.tree())
    wait_until(lambda: (dormant.provider(run.launcher) or {}).get("state") == "suspended", 20,
               f"the new provider {run.launcher} to be reported suspended on sight")
    run.wait_stopped("the new provider, on sight")
    run.record(run.tree())
    probe = run.command("initialize 1")
    check(not probe["answered"], "the new app-server does not answer initialize within 1 s", probe)

    rc, out, err = dormant.verb("activity")
    check(rc == 0, "dormant activity exits 0", f"{rc} {out} {err}")
    with KeepActive(dormant):
        run.wait_running("the new provider, after dormant activity")
        old_tree = subtree(first)
        check(old_tree and not any(is_stopped(p) for p in old_tree), "the first provider runs again too",
              describe(old_tree))
        probe = run.command("initialize 30")
        check(probe["answered"], "the new app-server answers initialize", probe)
        run.record(run.tree())
    reply = run.command("exit 0")
    check(reply.get("exiting") == 0, "the app is told to exit, leaving two app-servers", reply)
    try:
        code = run.proc.wait(60)
    except subprocess.TimeoutExpired:
        raise Failure(f"dormant did not exit within 60 s of its app; left: {describe(env.leftovers())}")
    check(code == 0, "dormant exits with the app's status (0)", code)
    wait_until(lambda: not env.leftovers(), 10, "no process of the test to be left")
    check(True, "nothing is left behind")


if __name__ == "__main__":
    cases = {"pause-then-app-exits": pause_then_app_exits, "supervisor-killed": supervisor_killed,
             "spawn-while-suspended": spawn_while_suspended}
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("case", choices=sorted(cases))
    p.add_argument("--dormant", required=True)
    p.add_argument("--codex", help="default: the pinned one under .deps/npm (tools/npm-deps.sh)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args()
    args.dormant = os.path.abspath(args.dormant)
    args.codex = os.path.abspath(args.codex) if args.codex else None
    run_test(f"codex-{args.case}", lambda env: cases[args.case](env, args), args.keep)
