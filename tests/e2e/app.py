#!/usr/bin/python3
"""A stand-in for a desktop coding app, for the e2e tests: it spawns a provider (`codex app-server`, or Claude
Code in stream-json mode) as its child with pipes, keeps it for its whole life, and lets the test drive it
through a Unix socket.

  app.py --control SOCK [--ready-file F] [--term-exit-code N] [--init-at-start] [--protocol codex|claude] \
         -- CODEX app-server

The app keeps running whatever happens to its child (stopped, continued, killed): like a real app it only
notices when a request goes unanswered or the pipe breaks. On SIGTERM/SIGINT/SIGHUP it exits with
--term-exit-code (default 0) and does not end its child itself, leaving that to whoever supervises it.

Control protocol: connect to SOCK, send one line, read one JSON line back.
  status              {"app_pid", "child_pid", "child_running", "child_returncode"}
  initialize SECONDS  sends `initialize` (claude: a control_request of subtype initialize);
                      {"answered": bool, "reply": {...}|null, "elapsed_ms": N}
                      (any reply with the request's id counts, a result or an error)
  turn SECONDS TEXT   codex: thread/start (once) + turn/start, waits for turn/completed; claude: a user message,
                      waits for the result line; {"completed": bool, "token_usage": {...}|null}; codex also
                      gives the turn's "status" ("completed", "failed", ...) and "error"
  run ARGV...         runs a program itself and waits; {"returncode": N|null, "errno": N, "error", "stdout"}
  connect HOST PORT   opens and closes a TCP connection itself; {"connected": bool, "errno": N}
  spawn               starts a new child and drives it from now on; a previous child that still runs is
                      kept as it is (pipes open); {"child_pid", "previous_pid"}; if the exec fails the old
                      child stays driven and child_pid is null, with "errno" and "error"
  exit CODE           replies {"exiting": CODE}, then exits with CODE
Once the child is spawned the app writes {"app_pid", "child_pid", "control"} to --ready-file (atomically).
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from claude_stream import ClaudeStreamClient  # noqa: E402
from jsonrpc import AppServerClient  # noqa: E402

CLIENTS = {"codex": AppServerClient, "claude": ClaudeStreamClient}


class App:
    def __init__(self, command, protocol: str, init_at_start: bool):
        self.command = command
        self.client_class = CLIENTS[protocol]
        self.child = None
        self.client = None
        self.others = []
        self.thread_id = None
        self.spawn()
        if init_at_start:
            self.client.initialize(60.0)
            self.client.notify("initialized")

    def spawn(self) -> None:
        child = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # may raise
        if self.child is not None and self.child.poll() is None:
            self.others.append((self.child, self.client))  # still running: kept, pipes open, no longer driven
        self.child = child
        self.client = self.client_class(self.child.stdin.fileno(), self.child.stdout.fileno())
        self.thread_id = None

    def status(self) -> dict:
        code = self.child.poll()
        return {"app_pid": os.getpid(), "child_pid": self.child.pid, "child_running": code is None,
                "child_returncode": code}

    def initialize(self, timeout: float) -> dict:
        start = time.monotonic()
        reply = self.client.initialize(timeout)
        elapsed = int((time.monotonic() - start) * 1000)
        return {"answered": reply is not None, "reply": reply, "elapsed_ms": elapsed}

    def turn(self, timeout: float, text: str) -> dict:
        if self.thread_id is None:
            self.thread_id = self.client.start_thread(os.getcwd(), timeout)
        if self.thread_id is None:
            return {"completed": False, "token_usage": None, "error": "thread/start failed"}
        done = self.client.run_turn(self.thread_id, text, timeout)
        if isinstance(self.client, ClaudeStreamClient):
            return {"completed": done is not None, "token_usage": done.get("usage") if done else None}
        usage = self.client.notifications("thread/tokenUsage/updated")
        turn = (done or {}).get("params", {}).get("turn", {})
        return {"completed": done is not None, "status": turn.get("status"), "error": turn.get("error"),
                "token_usage": usage[-1]["params"]["tokenUsage"] if usage else None}

    @staticmethod
    def run(argv) -> dict:
        """The app runs a program of its own (not through its provider) and waits for it."""
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        except OSError as e:
            return {"returncode": None, "errno": e.errno, "error": str(e)}
        except subprocess.TimeoutExpired:
            return {"returncode": None, "errno": None, "error": "timed out after 60 s"}
        return {"returncode": r.returncode, "errno": 0, "error": None,
                "stdout": r.stdout.decode("utf-8", "replace")[-2000:]}

    @staticmethod
    def connect(host: str, port: int) -> dict:
        """The app opens a TCP connection of its own to host:port and closes it."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(20)
        try:
            s.connect((host, port))
            return {"connected": True, "errno": 0}
        except OSError as e:
            return {"connected": False, "errno": e.errno, "error": str(e)}
        finally:
            s.close()

    def handle(self, line: str):
        """Returns (reply dict, exit code or None)."""
        words = line.split(None, 2)
        cmd = words[0] if words else ""
        try:
            if cmd == "status":
                return self.status(), None
            if cmd == "initialize":
                return self.initialize(float(words[1]) if len(words) > 1 else 5.0), None
            if cmd == "turn":
                return self.turn(float(words[1]), words[2] if len(words) > 2 else "hi"), None
            if cmd == "spawn":
                old = self.child.pid
                try:
                    self.spawn()
                except OSError as e:  # a refused exec (EPERM from the gate): the app sees a failed spawn
                    return {"child_pid": None, "previous_pid": old, "errno": e.errno, "error": str(e)}, None
                return {"child_pid": self.child.pid, "previous_pid": old}, None
            if cmd == "run":
                return self.run(line.split()[1:]), None
            if cmd == "connect":
                return self.connect(words[1], int(words[2])), None
            if cmd == "exit":
                code = int(words[1]) if len(words) > 1 else 0
                return {"exiting": code}, code
        except (ValueError, IndexError) as e:
            return {"error": f"bad request: {e}"}, None
        return {"error": f"unknown command {cmd!r}"}, None


def write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def serve(app: App, control: str, ready_file) -> int:
    try:
        os.unlink(control)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(control)
    sock.listen(4)
    if ready_file:  # only now: a reader of the ready file may connect at once
        write_atomically(ready_file, json.dumps({"app_pid": os.getpid(), "child_pid": app.child.pid,
                                                 "control": control}) + "\n")
    while True:
        conn, _ = sock.accept()
        with conn:
            conn.settimeout(30)
            data = b""
            try:
                while b"\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                continue
            reply, code = app.handle(data.decode("utf-8", "replace").strip())
            try:
                conn.sendall((json.dumps(reply) + "\n").encode())
            except OSError:
                pass
            if code is not None:
                return code


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--control", required=True, help="Unix socket path for the test's commands")
    p.add_argument("--ready-file")
    p.add_argument("--term-exit-code", type=int, default=0)
    p.add_argument("--protocol", choices=sorted(CLIENTS), default="codex",
                   help="codex: JSON-RPC of `codex app-server`; claude: Claude Code's stream-json")
    p.add_argument("--init-at-start", action="store_true", help="initialize (+ initialized) right away")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        p.error("the provider command is needed, e.g. -- codex app-server")

    def on_signal(_signum, _frame):
        # Exit without touching the child: ending leftovers is the supervisor's job.
        os._exit(a.term_exit_code)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    app = App(cmd, a.protocol, a.init_at_start)
    return serve(app, a.control, a.ready_file)


if __name__ == "__main__":
    sys.exit(main())
