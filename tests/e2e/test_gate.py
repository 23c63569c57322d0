#!/usr/bin/python3
"""Issue 6's end-to-end tests: the seccomp gate ([sandbox] gate) with the real `codex app-server` under dormant.

  test_gate.py --dormant PATH exec-recognised
      gate = "on": the log says the gate is on, `dormant status` counts the execs and lists the provider.
      After `dormant pause` the app starts a second app-server: the gate recognises its exec and the process
      is stopped before its first instruction (still the script's interpreter loader, no child, state 'T'), it
      does not answer initialize; `dormant resume` runs it and it answers.
  test_gate.py --dormant PATH network-when-active
      network = "when-active", the mock on 127.0.0.2 (DORMANT_TEST_NONLOOPBACK makes dormant count it as
      non-loopback), network_after = 3s: while the user is idle a turn's connection is refused (the mock sees
      nothing, status counts the refusal for the provider), the app's own connection to the same address is
      not; after `dormant activity` a turn reaches the mock.
  test_gate.py --dormant PATH supervisor-killed
      dormant is SIGKILLed while the gated tree runs: the app's next exec (/bin/true, a new app-server) and
      its connects (its own, and its providers' turns to the mock) still succeed; once the app and its
      app-servers end, nothing of the test is left (the guardian ends too).
  test_gate.py --dormant PATH supervisor-stopped
      dormant is stopped (SIGSTOP) while the gated tree runs: a stuck supervisor must not hang the app; its
      next exec, its connect and its app-server's turn still succeed (the guardian stands in once dormant's
      heartbeat is silent, and says so in the log). Then dormant is continued: the guardian hands back, status
      counts what the guardian continued, and dormant decides the app's next exec itself again.
  test_gate.py --dormant PATH chromium
      Debian's Chromium, as the app under gate = "auto", dumps the DOM of a local page and exits 0. If the
      auto pre-flight leaves the gate off, the log must say why.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
from e2e_lib import (Dormant, Failure, KeepActive, SupervisedApp, alive, check,  # noqa: E402
                     children_of, describe, dormant_log, exec_state, is_stopped, log, log_lines,
                     npm_binary, proc_stat, run_test, subtree, wait_until)


def gate_policy(gate: str = "on", network: str = None, network_after: str = None,
                suspend_after: str = "1h") -> str:
    """A manual-idle policy with the codex app-server matcher and a [sandbox] section."""
    text = (f'[idle]\nsource = "manual"\nsuspend_after = "{suspend_after}"\nkill_after = "2h"\n'
            f'kill_grace = "2s"\n')
    if network_after:
        text += f'network_after = "{network_after}"\n'
    text += f'\n[sandbox]\ngate = "{gate}"\n'
    if network:
        text += f'network = "{network}"\n'
    return text + '\n[[provider]]\nname = "codex"\nexe = "codex"\nargs = ["app-server"]\n'


def start(env, a, name: str, policy: str, host: str = "127.0.0.1", retries: int = None):
    codex = npm_binary("codex", a.codex)
    check(os.access(a.dormant, os.X_OK), f"dormant binary exists ({a.dormant})")
    port = env.start_mock("responses", host=host)
    env.write_codex_config(port, host=host, retries=retries)
    dormant = Dormant(env, a.dormant, name)
    return SupervisedApp(env, dormant, policy, [codex, "app-server"]), port


def gate_status(dormant) -> dict:
    return dormant.status().get("gate") or {}


def finish(env, run, code: int = 0) -> None:
    """The app exits `code`; dormant must exit with it and leave nothing behind."""
    reply = run.command(f"exit {code}")
    check(reply.get("exiting") == code, f"the app is told to exit {code}", reply)
    try:
        got = run.proc.wait(60)
    except subprocess.TimeoutExpired:
        raise Failure(f"dormant did not exit within 60 s of its app; left: {describe(env.leftovers())}")
    check(got == code, f"dormant exits with the app's status ({code})", got)
    wait_until(lambda: not env.leftovers(), 20, "no process of the test to be left")
    check(True, "nothing is left behind")


def exec_recognised(env, a) -> None:
    run, _port = start(env, a, "gexec", gate_policy("on"))
    dormant = run.dormant
    on = log_lines(env, "gexec", r"sandbox gate on \(")
    check(on, "dormant's log says the sandbox gate is on", dormant_log(env, "gexec")[-2000:])
    g = gate_status(dormant)
    # The app's own exec (python), the launcher script's exec, node's exec of the native binary at least.
    check(g.get("on") is True and g.get("exec", 0) >= 3 and g.get("errors") == 0,
          f"status: gate on, {g.get('exec')} execs seen, no errors", g)
    check(dormant.provider(run.launcher) is not None, f"status lists the provider (pid {run.launcher})",
          dormant.status().get("providers"))
    execs_before = g["exec"]

    rc, out, err = dormant.verb("pause")
    check(rc == 0, "dormant pause exits 0", f"{rc} {out} {err}")
    run.wait_stopped("after dormant pause")
    first = run.launcher
    reply = run.spawn()
    check(reply.get("previous_pid") == first, "the app starts a second app-server while paused", reply)
    new = reply["child_pid"]
    run.launcher = new
    wait_until(lambda: is_stopped(new), 20, f"the new app-server {new} to be stopped")
    run.record(run.tree())
    try:
        exe = os.readlink(f"/proc/{new}/exe")
    except OSError as e:
        exe = f"? ({e})"
    tree = subtree(new)
    # The launcher is `#!/usr/bin/env node`: stopped before its first instruction, it is still `env`, which has
    # not yet executed node, let alone started the native binary.
    check(os.path.basename(exe) == "env" and tree == [new],
          f"the new app-server was stopped before its first instruction (exe {exe}, subtree {describe(tree)})")
    lines = log_lines(env, "gexec", rf"gate: provider codex exec by pid {new} starts stopped")
    check(lines, "dormant's log says the gate recognised the exec and started it stopped",
          "\n".join(log_lines(env, "gexec", r"gate:")) or dormant_log(env, "gexec")[-2000:])
    log(f"  {lines[0].strip()}")
    g = gate_status(dormant)
    check(g.get("exec", 0) > execs_before, f"status counts the new exec ({execs_before} -> {g.get('exec')})", g)
    prov = wait_until(lambda: dormant.provider(new), 20, f"status to list the new provider {new}")
    check(prov["state"] == "paused", "status lists the new provider as paused", prov)
    probe = run.command("initialize 1")
    check(not probe["answered"], "the new app-server does not answer initialize within 1 s", probe)

    rc, out, err = dormant.verb("resume")
    check(rc == 0, "dormant resume exits 0", f"{rc} {out} {err}")
    run.wait_running("the new app-server, after dormant resume", timeout=20)
    probe = run.command("initialize 60")
    check(probe["answered"], "after resume the new app-server answers initialize", probe)
    run.record(run.tree())
    check(not any(is_stopped(p) for p in subtree(first)), "the first app-server runs again too",
          describe(subtree(first)))
    finish(env, run)


def network_when_active(env, a) -> None:
    host = "127.0.0.2"
    env.env["DORMANT_TEST_NONLOOPBACK"] = host
    run, port = start(env, a, "gnet", gate_policy("on", network="when-active", network_after="3s"),
                      host=host)
    dormant = run.dormant
    check(log_lines(env, "gnet", r"sandbox gate on \("), "dormant's log says the sandbox gate is on")

    wait_until(lambda: dormant.status()["idle_for_ms"] >= 4000, 30, "the user to be idle past network_after")
    st = dormant.status()
    prov = dormant.provider(run.launcher)
    check(prov and prov["state"] == "running",
          f"idle {st['idle_for_ms']} ms (past network_after, before suspend_after): the provider still runs",
          prov)
    refused_before = (st["gate"].get("refused_by_provider") or {}).get("codex", 0)
    mine = run.command(f"connect {host} {port}")
    check(mine.get("connected"),
          "the app's own connection to the same address is let through while idle (not a provider)", mine)
    # Codex retries a refused connection with a growing backoff (5 s, 10 s, 20 s, ... here): the turn runs in
    # the background while the test looks at the first refusal, then lets the user come back.
    result = {}
    worker = threading.Thread(target=lambda: result.update(run.command("turn 180 hello while idle", timeout=200)),
                              daemon=True)
    worker.start()

    def refused_now():
        return (gate_status(dormant).get("refused_by_provider") or {}).get("codex", 0) > refused_before
    wait_until(refused_now, 60, "the gate to refuse the provider's connection")
    g = gate_status(dormant)
    check(True, f"status counts the refused connect for provider codex: {g.get('refused_by_provider')}")
    lines = log_lines(env, "gnet", rf"gate: refused connect by codex .* to {re.escape(host)}:{port}\b")
    check(lines, "dormant's log names the provider, the address and the reason",
          "\n".join(log_lines(env, "gnet", r"gate:")))
    log(f"  {lines[0].strip()}")
    stats = env.mock_stats(port, host)
    check(stats["requests"] == 0 and not env.served("responses"), "the mock saw no request", stats)
    check(worker.is_alive(), "the turn has not completed while the user is idle", result)

    rc, out, err = dormant.verb("activity")
    check(rc == 0, "dormant activity exits 0", f"{rc} {out} {err}")
    with KeepActive(dormant):
        worker.join(200)
        refused_after = (gate_status(dormant).get("refused_by_provider") or {}).get("codex", 0)
    check(result.get("status") == "completed", "after dormant activity the turn (Codex's next retry) completes",
          result)
    served = env.served("responses")
    check(len(served) >= 1, f"the mock served the turn ({len(served)} response(s))", served)
    with KeepActive(dormant):
        turn = run.command("turn 90 hello again", timeout=120)
    check(turn.get("status") == "completed", "a second turn while active completes", turn)
    check((gate_status(dormant).get("refused_by_provider") or {}).get("codex", 0) == refused_after,
          "no connection was refused while the user was active", gate_status(dormant))
    finish(env, run)


def supervisor_killed(env, a) -> None:
    run, port = start(env, a, "gkill", gate_policy("on"))
    dormant = run.dormant
    check(gate_status(dormant).get("on") is True, "status: the gate is on")
    run.record(run.tree())
    os.kill(run.proc.pid, signal.SIGKILL)
    code = run.proc.wait(30)
    check(code == -signal.SIGKILL, "dormant died of SIGKILL", code)
    app_tree = set(subtree(run.app_pid))
    mocks = {p.pid for p, label in env.procs if label.startswith("mock_")}
    guardian = [p for p in env.marked_pids() if p not in app_tree and p not in mocks and alive(p)]
    check(guardian, f"the guardian outlives dormant: {describe(guardian)}")

    r = run.command("run /bin/true")
    check(r.get("returncode") == 0, "the app's next exec (/bin/true) succeeds without dormant", r)
    r = run.command(f"connect 127.0.0.1 {port}")
    check(r.get("connected"), "the app's own connect to 127.0.0.1 succeeds without dormant", r)
    turn = run.command("turn 90 hello", timeout=120)
    check(turn.get("status") == "completed", "the running app-server's turn reaches the mock", turn)
    reply = run.spawn()
    check(reply.get("child_pid"), "the app spawns a new app-server", reply)
    run.launcher = reply["child_pid"]
    probe = run.command("initialize 60")
    check(probe["answered"], "the new app-server (exec'd without dormant) answers initialize", probe)
    run.record(run.tree())
    turn = run.command("turn 90 hello from the new one", timeout=120)
    check(turn.get("status") == "completed", "the new app-server's turn reaches the mock", turn)
    check(len(env.served("responses")) >= 2, "the mock served both turns", len(env.served("responses")))
    reply = run.command("exit 0")
    check(reply.get("exiting") == 0, "the app is told to exit", reply)
    wait_until(lambda: not alive(run.app_pid), 20, "the app to exit")
    # Without dormant the app-servers end when their stdin closes; the guardian ends with the last of them.
    wait_until(lambda: not env.leftovers(), 30, "the app-servers and the guardian to end")
    check(True, "nothing is left behind (the guardian ended too)")


UNPRIVILEGED = 65534  # nobody
def supervisor_stopped(env, a) -> None:
    run, port = start(env, a, "gstop", gate_policy("on"))
    dormant = run.dormant
    check(gate_status(dormant).get("on") is True, "status: the gate is on")
    check(gate_status(dormant).get("guardian") == 0, "status: the guardian has continued nothing yet",
          gate_status(dormant))
    os.kill(run.proc.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: (proc_stat(run.proc.pid) or ("",))[0] == "T", 10, "dormant to be stopped")
        check(True, "dormant is stopped (SIGSTOP): a stuck supervisor")
        start_at = time.monotonic()
        try:
            r = run.command("run /bin/true", timeout=30)
        except OSError as e:
            raise Failure(f"the app's exec of /bin/true hangs while dormant is stopped ({e}); the app's child: "
                          f"{' '.join(exec_state(p) for p in children_of(run.app_pid))}")
        took = time.monotonic() - start_at
        check(r.get("returncode") == 0, f"the app's exec (/bin/true) succeeds while dormant is stopped "
              f"({took * 1000:.0f} ms)", r)
        r = run.command(f"connect 127.0.0.1 {port}", timeout=30)
        check(r.get("connected"), "the app's own connect succeeds while dormant is stopped", r)
        turn = run.command("turn 90 hello", timeout=120)
        check(turn.get("status") == "completed", "the app-server's turn reaches the mock while dormant is stopped",
              turn)
        lines = log_lines(env, "gstop", r"dormant guardian: dormant has not beaten for \d+ ms")
        check(lines, "the log says the guardian stands in for the stopped dormant",
              dormant_log(env, "gstop")[-2000:])
        log(f"  {lines[0].strip()}")
    finally:
        os.kill(run.proc.pid, signal.SIGCONT)
    wait_until(lambda: log_lines(env, "gstop", r"dormant guardian: dormant runs again"), 30,
               "the guardian to hand the gate back")
    log(f"  {log_lines(env, 'gstop', r'dormant guardian: dormant runs again')[0].strip()}")
    g = gate_status(dormant)
    log(f"  gate counters after dormant continued: {g}")
    # /bin/true, the connect, and the turn's connect(s) at least.
    check(g.get("guardian", 0) >= 3, f"status counts {g.get('guardian')} call(s) the guardian continued", g)
    execs, by_guardian = g.get("exec", 0), g.get("guardian")
    r = run.command("run /bin/true", timeout=30)
    check(r.get("returncode") == 0, "after SIGCONT the app's exec (/bin/true) succeeds", r)
    g = gate_status(dormant)
    check(g.get("exec", 0) > execs and g.get("guardian") == by_guardian,
          f"dormant decided that exec itself ({execs} -> {g.get('exec')} execs seen, none by the guardian)", g)
    finish(env, run)


CHROMIUM_PAGE = "<!doctype html><html><head><title>gate</title></head><body><p id=m>dormant-gate-ok</p>" \
                "<script>document.getElementById('m').textContent += '-js';</script></body></html>\n"


def chromium(env, a) -> None:
    browser = shutil.which("chromium", path="/usr/bin:/bin")
    if not browser:
        raise Failure("chromium not found in /usr/bin: apt-get install -y chromium (tools/setup.sh test)")
    check(os.access(a.dormant, os.X_OK), f"dormant binary exists ({a.dormant})")
    page = env.path("page.html")
    with open(page, "w", encoding="utf-8") as f:
        f.write(CHROMIUM_PAGE)
    policy = env.path("policy-chromium.toml")
    with open(policy, "w", encoding="utf-8") as f:
        f.write('[idle]\nsource = "manual"\nsuspend_after = "1h"\nkill_after = "2h"\n\n[sandbox]\ngate = "auto"\n')
    profile = env.path("chromium-profile")
    # Chromium refuses to run as root without --no-sandbox, and the point is its own sandbox: the whole test
    # (dormant included) runs as an unprivileged user that owns the scratch directory.
    for root, dirs, files in os.walk(env.dir):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(name, UNPRIVILEGED, UNPRIVILEGED)
    as_user = ["/usr/bin/setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups"]
    proc = env.spawn("dormant-chromium", as_user + [
        a.dormant, "run", "--policy", policy, "--name", "chromium", "--",
        browser, "--headless", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
        "--dump-dom", f"file://{page}"])
    log(f"dormant run chromium started, pid {proc.pid}")
    try:
        code = proc.wait(180)
    except subprocess.TimeoutExpired:
        raise Failure(f"chromium under the gate did not finish within 180 s: {describe(env.leftovers())}")
    out = open(env.path("dormant-chromium.out"), encoding="utf-8", errors="replace").read()
    text = dormant_log(env, "chromium")
    gate = [ln.strip() for ln in text.splitlines() if "sandbox gate" in ln]
    log(f"  {gate[0] if gate else 'no sandbox gate line'}")
    check(code == 0, "chromium under dormant (gate = auto) exits 0", f"{code}\n{text[-3000:]}")
    check("dormant-gate-ok-js" in out and "</html>" in out, "chromium printed the DOM, with the script's effect",
          out[-1000:])
    on = [ln for ln in gate if "sandbox gate on (" in ln]
    off = [ln for ln in gate if re.search(r"sandbox gate off \(auto: .+\)", ln)]
    check(on or off, "the log says whether the gate was on, and why it is off if it is", "\n".join(gate) or text)
    if off:
        log(f"  note: the auto pre-flight kept the gate off for chromium: {off[0]}")
    wait_until(lambda: not env.leftovers(), 20, "no process of the test to be left")
    check(True, "nothing is left behind")


if __name__ == "__main__":
    cases = {"exec-recognised": exec_recognised, "network-when-active": network_when_active,
             "supervisor-killed": supervisor_killed, "supervisor-stopped": supervisor_stopped,
             "chromium": chromium}
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("case", choices=sorted(cases))
    p.add_argument("--dormant", required=True)
    p.add_argument("--codex", help="default: the pinned one under .deps/npm (tools/npm-deps.sh)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args()
    args.dormant = os.path.abspath(args.dormant)
    args.codex = os.path.abspath(args.codex) if args.codex else None
    run_test(f"gate-{args.case}", lambda env: cases[args.case](env, args), args.keep)
