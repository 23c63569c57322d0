"""Helpers for the end-to-end test scripts: a scratch environment, the mock model servers, the real provider
CLIs from tools/npm-deps.sh, `dormant` itself, and /proc inspection. Standard library only.

A test script builds an E2eEnv, calls its steps, and ends with run_test(main), which prints one line per step
("ok ..."), turns a Failure into "FAIL: ..." with context and exit status 1, and always cleans up: every
process started from the scratch directory is ended, found by its pid and start time or by the scratch path
in its environment, never by name.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
PYTHON = "/usr/bin/python3"
NPM_BIN = os.path.join(REPO, ".deps", "npm", "node_modules", ".bin")
PINNED = {"codex": ("@openai/codex", "0.169.0"), "claude": ("@anthropic-ai/claude-code", "2.1.328")}

_T0 = time.monotonic()


class Failure(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:7.2f}s] {msg}", flush=True)


def check(cond, msg: str, detail=None) -> None:
    if not cond:
        raise Failure(msg if detail is None else f"{msg}\n  observed: {detail}")
    log(f"ok   {msg}")


def wait_until(fn, timeout: float, what: str, interval: float = 0.1):
    """Polls fn() until it returns something truthy; returns it, or raises Failure naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except Failure:
            raise
        except Exception as e:  # noqa: BLE001 - a poll that failed is just "not yet"; shown if it never succeeds
            last = f"{type(e).__name__}: {e}"
            ok = False
        else:
            ok = bool(last)
        if ok:
            return last
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {timeout:.0f}s waiting for {what}\n  last observed: {last!r}")
        time.sleep(interval)


def npm_binary(name: str, override: str = None) -> str:
    """The pinned CLI's launcher, or a Failure that says how to install it (the e2e tests never skip)."""
    path = override or os.path.join(NPM_BIN, name)
    package, version = PINNED[name]
    if not os.access(path, os.X_OK):
        raise Failure(f"{name} not found at {path}: run tools/npm-deps.sh to install {package}@{version}")
    manifest = os.path.join(REPO, ".deps", "npm", "node_modules", package, "package.json")
    if override is None:
        try:
            have = json.load(open(manifest, encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError):
            have = None
        if have != version:
            raise Failure(f"{package} is at {have}, the tests pin {version}: run tools/npm-deps.sh")
    return path


# ---------------------------------------------------------------- /proc

def proc_stat(pid: int):
    """(state, ppid, starttime) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def subtree(root: int):
    """root and every live descendant process (not threads), found through ppid links. Zombies are left out:
    they cannot be stopped or run, and a stopped parent does not reap them."""
    children = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st:
            children.setdefault(st[1], []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        st = proc_stat(pid)
        if st is None:
            continue
        if st[0] not in ("Z", "X"):
            out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def frozen_by_cgroup(pid: int) -> bool:
    """True when the process sits in a cgroup v2 whose cgroup.events says `frozen 1`."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
            line = next((ln for ln in f if ln.startswith("0::")), None)
        if not line:
            return False
        with open(f"/sys/fs/cgroup{line[3:].strip()}/cgroup.events", encoding="utf-8") as f:
            return "frozen 1" in f.read()
    except OSError:
        return False


def is_stopped(pid: int) -> bool:
    """Stopped by a signal ('T' in /proc/PID/stat field 3) or frozen by the cgroup freezer."""
    st = proc_stat(pid)
    return st is not None and (st[0] == "T" or frozen_by_cgroup(pid))


def describe(pids) -> str:
    parts = []
    for pid in pids:
        st = proc_stat(pid)
        try:
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
        except OSError:
            exe = "?"
        parts.append(f"{pid}({exe}):{st[0] if st else 'gone'}{'/frozen' if frozen_by_cgroup(pid) else ''}")
    return " ".join(parts)


def children_of(pid: int):
    return [p for p in all_pids() if (proc_stat(p) or ("", 0))[1] == pid]


def exec_state(pid: int) -> str:
    """pid(exe):state syscall=...: where a process sits (`59 0x7f..` is inside execve; `59 0x0` just after)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/syscall", encoding="utf-8") as f:
            call = " ".join(f.read().split()[:3])
    except OSError as e:
        exe, call = "?", str(e)
    st = proc_stat(pid)
    return f"{pid}({exe}):{st[0] if st else 'gone'} syscall={call}"


def alive(pid: int, starttime: int = None) -> bool:
    """The process exists, is not a zombie, and (if given) started at `starttime` (so it is not a reused pid)."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X") and (starttime is None or st[2] == starttime)


# ---------------------------------------------------------------- unix socket control of app.py

def app_command(control: str, line: str, timeout: float = 60.0) -> dict:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(control)
        s.sendall((line + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return json.loads(data)


# ---------------------------------------------------------------- the scratch environment

class E2eEnv:
    """A scratch HOME/CODEX_HOME/XDG_* under one temporary directory, and everything started in it."""

    def __init__(self, name: str, keep: bool = False):
        self.dir = tempfile.mkdtemp(prefix=f"dormant-e2e-{name}-")
        self.keep = keep
        self.home = os.path.join(self.dir, "home")
        self.codex_home = os.path.join(self.home, ".codex")
        self.runtime = os.path.join(self.dir, "run")
        self.work = os.path.join(self.dir, "work")
        for d in (self.home, self.codex_home, self.runtime, self.work,
                  os.path.join(self.dir, "state"), os.path.join(self.dir, "config")):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "CODEX_HOME": self.codex_home,
            "XDG_RUNTIME_DIR": self.runtime,
            "XDG_STATE_HOME": os.path.join(self.dir, "state"),
            "XDG_CONFIG_HOME": os.path.join(self.dir, "config"),
            "MOCK_API_KEY": "mock-key",
            "DORMANT_E2E_DIR": self.dir,   # marks every process of this test, for the final sweep
            "LANG": "C.UTF-8",
        }
        self.procs = []        # (Popen, label) in start order
        self.recorded = {}     # pid -> starttime of provider processes seen, for the "nothing left" checks
        log(f"scratch dir {self.dir}")

    def path(self, *parts) -> str:
        return os.path.join(self.dir, *parts)

    def spawn(self, label: str, argv, **kw) -> subprocess.Popen:
        out = open(self.path(f"{label}.out"), "wb")
        err = open(self.path(f"{label}.err"), "wb")
        p = subprocess.Popen(argv, env=kw.pop("env", self.env), cwd=kw.pop("cwd", self.work),
                             stdin=subprocess.DEVNULL, stdout=out, stderr=err, **kw)
        self.procs.append((p, label))
        return p

    def output(self, label: str, stream: str = "err") -> str:
        """All that the process spawned as `label` wrote to `stream` so far ("" before it exists)."""
        try:
            with open(self.path(f"{label}.{stream}"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def tail(self, label: str, stream: str = "err", n: int = 30) -> str:
        try:
            with open(self.path(f"{label}.{stream}"), encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- mocks

    def start_mock(self, kind: str, *flags, host: str = "127.0.0.1") -> int:
        """Starts mock_responses.py (kind "responses") or mock_messages.py ("messages") on `host`; returns its
        port."""
        port_file = self.path(f"mock_{kind}.port")
        self.spawn(f"mock_{kind}", [PYTHON, os.path.join(HERE, f"mock_{kind}.py"), "--port-file", port_file,
                                    "--log", self.path(f"served_{kind}.jsonl"), "--host", host, *flags])
        port = int(wait_until(lambda: open(port_file).read().strip(), 30, f"mock_{kind} to announce its port"))
        log(f"mock_{kind} listening on {host}:{port}")
        return port

    def mock_stats(self, port: int, host: str = "127.0.0.1") -> dict:
        """GET /_mock/stats: {"requests": N, "usage": {summed usage fields}}."""
        import urllib.request
        with urllib.request.urlopen(f"http://{host}:{port}/_mock/stats", timeout=10) as r:
            return json.load(r)

    def served(self, kind: str):
        try:
            with open(self.path(f"served_{kind}.jsonl"), encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def write_codex_config(self, port: int, model: str = "gpt-test", host: str = "127.0.0.1",
                           retries: int = None) -> None:
        """Points Codex at the Responses mock on host:port. `retries` sets the provider's request and stream
        retries (0: a refused connection fails the turn at once instead of after Codex's backoff)."""
        extra = "" if retries is None else f"request_max_retries = {retries}\nstream_max_retries = {retries}\n"
        with open(os.path.join(self.codex_home, "config.toml"), "w", encoding="utf-8") as f:
            f.write(f'model = "{model}"\nmodel_provider = "mock"\n\n[model_providers.mock]\nname = "mock"\n'
                    f'base_url = "http://{host}:{port}/v1"\nwire_api = "responses"\nenv_key = "MOCK_API_KEY"\n'
                    f'{extra}')

    def use_claude_mock(self, port: int) -> None:
        """Points every Claude Code started from now on (through self.env) at the Messages mock."""
        self.env = self.claude_env(port)

    def claude_env(self, port: int) -> dict:
        return dict(self.env, ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}", ANTHROPIC_API_KEY="mock-key",
                    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")

    # -- cleanup

    def marked_pids(self):
        """Processes whose environment carries this test's DORMANT_E2E_DIR marker."""
        marker = f"DORMANT_E2E_DIR={self.dir}".encode()
        out = []
        for pid in all_pids():
            if pid == os.getpid():
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        out.append(pid)
            except OSError:
                pass
        return out

    def leftovers(self):
        """Live processes of this test (marked, or recorded providers) other than the mocks."""
        mocks = {p.pid for p, label in self.procs if label.startswith("mock_") and p.poll() is None}
        pids = set(self.marked_pids()) | {pid for pid, st in self.recorded.items() if alive(pid, st)}
        return sorted(pid for pid in pids - mocks if alive(pid))

    def cleanup(self) -> None:
        for p, _label in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p, _label in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pid in set(self.marked_pids()) | {p for p, st in self.recorded.items() if alive(p, st)}:
            try:  # SIGKILL ends stopped processes too
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            log(f"kept {self.dir}")


def run_test(name: str, body, keep: bool = False) -> None:
    """Runs body(env) in a fresh E2eEnv; exits 0 on success, 1 with a FAIL line (and the stderr of what the
    test started) on a Failure or an unexpected error. Cleans up either way."""
    def interrupted(signum, _frame):
        raise Failure(f"interrupted by signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # ctest's timeout, a closed terminal, ^C
        signal.signal(sig, interrupted)
    env = E2eEnv(name, keep)
    status = 1
    try:
        try:
            body(env)
            status = 0
        except Failure as e:
            print(f"FAIL: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - a broken step is a failure with its traceback, not a crash
            import traceback
            traceback.print_exc()
            print(f"FAIL: unexpected {type(e).__name__}: {e}", flush=True)
        if status:
            for _p, label in env.procs:
                text = env.tail(label)
                if text:
                    print(f"--- last lines of {label}'s stderr:\n{text}", flush=True)
        print("PASS" if status == 0 else "FAILED", flush=True)
    except (OSError, Failure):  # stdout gone, or a second signal: still clean up below
        pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        env.cleanup()
    sys.exit(status)


# ---------------------------------------------------------------- dormant and a supervised app

class Dormant:
    """Runs `dormant` verbs against the supervisor named `name` of this test (same XDG_RUNTIME_DIR)."""

    def __init__(self, env: E2eEnv, binary: str, name: str, provider_name: str = "codex"):
        self.env = env
        self.binary = binary
        self.name = name
        self.provider_name = provider_name

    def verb(self, *args, timeout: float = 15.0):
        """(exit status, stdout, stderr) of `dormant ARGS... --name NAME`."""
        r = subprocess.run([self.binary, *args, "--name", self.name], env=self.env.env, cwd=self.env.work,
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout, r.stderr

    def status(self) -> dict:
        rc, out, err = self.verb("status", "--json")
        if rc != 0:
            raise RuntimeError(f"dormant status exited {rc}: {err.strip()}")
        return json.loads(out)

    def provider(self, pid: int):
        """The entry of `dormant status --json` for the provider with this pid (and our provider name), or None."""
        return next((p for p in self.status().get("providers", [])
                     if p.get("pid") == pid and p.get("name") == self.provider_name), None)


def dormant_log(env: E2eEnv, name: str) -> str:
    """The log (stderr) of the supervisor spawned as `dormant-NAME`."""
    return env.output(f"dormant-{name}")


def log_lines(env: E2eEnv, name: str, pattern: str):
    """The lines of that log that match the regular expression `pattern`."""
    return [ln for ln in dormant_log(env, name).splitlines() if re.search(pattern, ln)]


def idle_policy(suspend_after: str, kill_after: str, kill_grace: str, provider: str = "codex") -> str:
    """A manual-idle policy with one provider matcher: codex + app-server, or claude + stream-json."""
    arg = {"codex": "app-server", "claude": "stream-json"}[provider]
    return (f'[idle]\nsource = "manual"\nsuspend_after = "{suspend_after}"\nkill_after = "{kill_after}"\n'
            f'kill_grace = "{kill_grace}"\n\n[[provider]]\nname = "{provider}"\nexe = "{provider}"\n'
            f'args = ["{arg}"]\n')


class KeepActive:
    """While the block runs, sends `dormant activity` every second (failures ignored: the supervisor may not be
    listening yet). Used where the user is plainly there (starting the app, typing a prompt), so that on a slow
    machine a short suspend_after cannot race the steps that are not about idleness."""

    def __init__(self, dormant: Dormant):
        self.dormant = dormant
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.dormant.verb("activity", timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.stop.wait(1.0)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.stop.set()
        self.thread.join()


def codex_policy(suspend_after: str, kill_after: str, kill_grace: str) -> str:
    return idle_policy(suspend_after, kill_after, kill_grace, "codex")


class SupervisedApp:
    """`dormant run --policy P --name NAME -- app.py ... -- PROVIDER...`, started and waited for: the app is up,
    its provider child and that child's own child (npm launchers start a native binary) exist."""

    def __init__(self, env: E2eEnv, dormant: Dormant, policy_text: str, provider_argv, app_exit: int = 0,
                 min_tree: int = 2, protocol: str = "codex"):
        self.env = env
        self.dormant = dormant
        policy = env.path(f"policy-{dormant.name}.toml")
        with open(policy, "w", encoding="utf-8") as f:
            f.write(policy_text)
        self.control = env.path(f"app-{dormant.name}.sock")
        ready = env.path(f"app-{dormant.name}.ready")
        self.proc = env.spawn(f"dormant-{dormant.name}", [
            dormant.binary, "run", "--policy", policy, "--name", dormant.name, "--",
            PYTHON, os.path.join(HERE, "app.py"), "--control", self.control, "--ready-file", ready,
            "--init-at-start", "--term-exit-code", str(app_exit), "--protocol", protocol, "--", *provider_argv])
        log(f"dormant run started, pid {self.proc.pid}")

        def ready_info():
            if self.proc.poll() is not None:
                raise Failure(f"dormant run exited early with status {self.proc.returncode}")
            with open(ready, encoding="utf-8") as f:
                return json.load(f)
        with KeepActive(dormant):  # the user is starting the app: the idle clock starts once it is up
            info = wait_until(ready_info, 90, "the app to start its provider and initialize it")
            self.app_pid, self.launcher = info["app_pid"], info["child_pid"]
            tree = wait_until(lambda: (lambda t: t if len(t) >= min_tree else None)(subtree(self.launcher)), 30,
                              "the provider's native binary below its launcher")
            self.record(tree)
            wait_until(lambda: dormant.provider(self.launcher), 30,
                       f"dormant status to list the provider with pid {self.launcher}")
        log(f"app pid {self.app_pid}; provider subtree {describe(tree)}")

    def record(self, pids) -> None:
        for pid in pids:
            st = proc_stat(pid)
            if st:
                self.env.recorded.setdefault(pid, st[2])

    def tree(self):
        return subtree(self.launcher)

    def command(self, line: str, timeout: float = 60.0) -> dict:
        return app_command(self.control, line, timeout)

    def spawn(self, timeout: float = 30.0) -> dict:
        """The app starts a new provider (`spawn`). Like libuv's uv_spawn, the app waits until the child's exec
        has happened or failed: a spawn that does not return is a Failure that shows where the child sits."""
        before = set(children_of(self.app_pid))
        try:
            return self.command("spawn", timeout)
        except OSError as e:  # socket.timeout included
            kids = [p for p in children_of(self.app_pid) if p not in before]
            raise Failure(f"the app's spawn of a new provider did not return within {timeout:.0f} s ({e}); its "
                          f"new child: {' '.join(exec_state(p) for p in kids) or 'none'}")

    def wait_stopped(self, what: str, timeout: float = 10.0) -> None:
        wait_until(lambda: all(is_stopped(p) for p in self.tree()), timeout,
                   f"every process of the provider subtree to be stopped ({what})")
        tree = self.tree()
        check(tree and all(is_stopped(p) for p in tree), f"provider subtree stopped ({what}): {describe(tree)}")
        check(alive(self.app_pid) and not is_stopped(self.app_pid), "the app itself is not stopped",
              describe([self.app_pid]))

    def wait_running(self, what: str, timeout: float = 10.0) -> None:
        wait_until(lambda: not any(is_stopped(p) for p in self.tree()), timeout,
                   f"every process of the provider subtree to run ({what})")
        tree = self.tree()
        check(tree and not any(is_stopped(p) for p in tree), f"provider subtree running ({what}): {describe(tree)}")
