"""A small client for Claude Code's stream-json mode (`claude --input-format stream-json --output-format
stream-json --verbose`), the way desktop apps and SDKs drive it: one JSON object a line on stdin/stdout.

Same shape as jsonrpc.AppServerClient, so app.py can drive either provider:
  initialize(timeout)        a control_request {"subtype": "initialize"}; returns the matching
                             control_response, or None if none came in time (a stopped claude does not answer)
  run_turn(None, text, t)    a user message; returns the {"type": "result"} line that ends the turn, or None
"""

import itertools
import json
import threading
import time

from jsonrpc import AppServerClient


class ClaudeStreamClient(AppServerClient):
    def __init__(self, write_fd: int, read_fd: int):
        self._request_ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        super().__init__(write_fd, read_fd)

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        with self._cond:
            if msg.get("type") == "control_response":
                request_id = msg.get("response", {}).get("request_id")
                if request_id is not None:
                    self._replies[request_id] = msg
            else:
                self._notifications.append(msg)
            self._cond.notify_all()

    def _wait_reply(self, request_id: str, timeout: float):
        deadline = time.monotonic() + timeout
        with self._cond:
            while request_id not in self._replies and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._replies.pop(request_id, None)

    def initialize(self, timeout: float, client: str = None):  # noqa: ARG002 - same signature as the base
        with self._ids_lock:
            request_id = f"req_{next(self._request_ids)}"
        if not self.send({"type": "control_request", "request_id": request_id,
                          "request": {"subtype": "initialize"}}):
            return None
        return self._wait_reply(request_id, timeout)

    def notify(self, method: str, params=None) -> bool:  # noqa: ARG002 - stream-json has no notifications to send
        return True

    def start_thread(self, cwd: str, timeout: float):  # noqa: ARG002 - one session per process
        return "session"

    def run_turn(self, thread_id, text: str, timeout: float):  # noqa: ARG002
        mark = self.notification_count()
        if not self.send({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": text}]}}):
            return None
        return self.wait_notification_type("result", timeout, since=mark)

    def wait_notification_type(self, kind: str, timeout: float, since: int = 0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self._notifications[since:]:
                    if msg.get("type") == kind:
                        return msg
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self._cond.wait(left)
