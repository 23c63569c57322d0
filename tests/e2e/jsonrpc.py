#!/usr/bin/python3
"""A small JSON-RPC client for `codex app-server` (newline-delimited JSON objects on stdio).

As a module: AppServerClient wraps a child's stdin/stdout; request() sends one request and waits for the reply
with the same id, up to a timeout (a stopped app-server simply does not answer, which is what the e2e test
looks for). Replies that arrive late, after their request timed out, are kept but never mistaken for the
answer to a later request, since ids only go up.

As a program, a driver for trying an app-server by hand or making rollouts:
  jsonrpc.py [--timeout S] [--client NAME] [--turn TEXT]... -- CODEX_LAUNCHER app-server
spawns the command, sends initialize (+ initialized), prints the reply, runs each --turn in one thread
(thread/start, turn/start, waits for turn/completed), prints the token usage notifications, and exits 0 when
every step was answered, 1 otherwise.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

DEFAULT_CLIENT = "dormant_e2e"


class AppServerClient:
    """JSON-RPC over a pair of pipes. Thread-safe; a reader thread collects incoming lines."""

    def __init__(self, write_fd: int, read_fd: int):
        self._write_fd = write_fd
        self._read_fd = read_fd
        self._cond = threading.Condition()
        self._replies = {}          # id -> message
        self._notifications = []    # messages without an id, in order
        self._next_id = 1
        self.closed = False         # the peer's stdout reached EOF
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self._dispatch(line)
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        with self._cond:
            if "id" in msg and ("result" in msg or "error" in msg):
                self._replies[msg["id"]] = msg
            elif "method" in msg and "id" not in msg:
                self._notifications.append(msg)
            # Requests from the server (approvals etc.) are not expected with the mock; they are ignored.
            self._cond.notify_all()

    def send(self, msg: dict) -> bool:
        data = (json.dumps(msg) + "\n").encode()
        try:
            while data:
                n = os.write(self._write_fd, data)
                data = data[n:]
            return True
        except OSError:  # EPIPE: the app-server is gone
            return False

    def notify(self, method: str, params=None) -> bool:
        msg = {"method": method}
        if params is not None:
            msg["params"] = params
        return self.send(msg)

    def request(self, method: str, params=None, timeout: float = 10.0):
        """Returns the reply message ({"id", "result"} or {"id", "error"}), or None if none came in time."""
        with self._cond:
            req_id = self._next_id
            self._next_id += 1
        msg = {"id": req_id, "method": method}
        if params is not None:
            msg["params"] = params
        if not self.send(msg):
            return None
        deadline = time.monotonic() + timeout
        with self._cond:
            while req_id not in self._replies and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._replies.pop(req_id, None)

    def wait_notification(self, method: str, timeout: float, since: int = 0, match=None):
        """Waits for a notification `method` at index >= since (and match(msg) if given); returns it or None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self._notifications[since:]:
                    if msg.get("method") == method and (match is None or match(msg)):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self._cond.wait(left)

    def notification_count(self) -> int:
        with self._cond:
            return len(self._notifications)

    def notifications(self, method: str = None) -> list:
        with self._cond:
            return [m for m in self._notifications if method is None or m.get("method") == method]

    # The calls a desktop client makes, as in the sample transcript.

    def initialize(self, timeout: float, client: str = DEFAULT_CLIENT):
        params = {"clientInfo": {"name": client, "title": "dormant e2e", "version": "0.1.0"},
                  "capabilities": {"experimentalApi": True}}
        return self.request("initialize", params, timeout)

    def start_thread(self, cwd: str, timeout: float):
        reply = self.request("thread/start", {"cwd": cwd}, timeout)
        if reply and "result" in reply:
            return reply["result"]["thread"]["id"]
        return None

    def run_turn(self, thread_id: str, text: str, timeout: float):
        """turn/start, then waits for that thread's turn/completed; returns the notification or None."""
        mark = self.notification_count()
        reply = self.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}]},
                             timeout)
        if not reply or "result" not in reply:
            return None
        turn_id = reply["result"]["turn"]["id"]
        return self.wait_notification(
            "turn/completed", timeout, since=mark,
            match=lambda m: m.get("params", {}).get("turn", {}).get("id") == turn_id)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--client", default=DEFAULT_CLIENT, help="clientInfo.name (the rollout's originator)")
    p.add_argument("--cwd", default=os.getcwd())
    p.add_argument("--turn", action="append", default=[])
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        p.error("a command to run is needed, e.g. -- codex app-server")
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    client = AppServerClient(child.stdin.fileno(), child.stdout.fileno())
    ok = True
    try:
        reply = client.initialize(a.timeout, a.client)
        print(json.dumps({"initialize": reply}), flush=True)
        ok = bool(reply and "result" in reply)
        if ok and a.turn:
            client.notify("initialized")
            thread_id = client.start_thread(a.cwd, a.timeout)
            ok = thread_id is not None
            for text in a.turn if ok else []:
                done = client.run_turn(thread_id, text, a.timeout)
                print(json.dumps({"turn": text, "completed": done is not None}), flush=True)
                ok = ok and done is not None
            for m in client.notifications("thread/tokenUsage/updated"):
                print(json.dumps({"tokenUsage": m["params"]["tokenUsage"]}), flush=True)
    finally:
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
