"""Shared plumbing for the mock model servers (mock_responses.py, mock_messages.py).

Standard library only, for /usr/bin/python3. A mock binds 127.0.0.1 (or --host) on the port asked for
(0 = ephemeral), prints "PORT <n>" on stdout, writes the port to --port-file (atomically, so a reader never
sees half a number), and appends one JSON line per served model response to --log, flushed at once, so a
test can compare the totals a provider logged with what was served. SIGTERM and SIGINT end it cleanly.

Besides the model endpoint, every mock answers:
  GET  /_mock/stats   -> {"requests": N, "usage": {summed usage fields}}
  POST /_mock/config  -> merge a JSON object into the live config (e.g. {"usage": {...}}, {"delay_ms": 500})
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; the gate test binds 127.0.0.2)")
    parser.add_argument("--port", type=int, default=0, help="port to bind on --host (0: ephemeral)")
    parser.add_argument("--port-file", help="write the bound port here")
    parser.add_argument("--log", help="append one JSON line per served response here")
    parser.add_argument("--text", default="Hello from mock.", help="the assistant's answer")
    parser.add_argument("--delay-ms", type=int, default=0, help="pause between streamed events")
    parser.add_argument("--status", type=int, default=200, help="HTTP status for model requests (non-200: error)")
    parser.add_argument("--quiet", action="store_true", help="no per-request lines on stderr")


class UsageLog:
    """Counts served responses, sums their usage, and appends them to a JSON-lines file."""

    def __init__(self, path):
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8") if path else None
        self.requests = 0
        self.totals = {}

    def record(self, entry: dict) -> None:
        with self._lock:
            self.requests += 1
            entry["seq"] = self.requests
            for key, value in flatten(entry.get("usage", {})).items():
                self.totals[key] = self.totals.get(key, 0) + value
            if self._file:
                self._file.write(json.dumps(entry, sort_keys=True) + "\n")
                self._file.flush()

    def stats(self) -> dict:
        with self._lock:
            return {"requests": self.requests, "usage": dict(self.totals)}


def flatten(usage: dict, prefix: str = "") -> dict:
    """{"a": 1, "b": {"c": 2}} -> {"a": 1, "b.c": 2}; only numbers are kept."""
    out = {}
    for key, value in usage.items():
        if isinstance(value, dict):
            out.update(flatten(value, prefix + key + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix + key] = value
    return out


class MockHandler(BaseHTTPRequestHandler):
    """Routes /_mock/* here; a subclass implements serve_model(path, body) for its model endpoint."""

    protocol_version = "HTTP/1.1"
    server_version = "dormant-mock/1"
    model_path = "/v1/none"

    # Set by serve(): the live config dict, the usage log, a lock for the config.
    config: dict = {}
    usage_log: UsageLog = None
    config_lock = threading.Lock()

    def log_message(self, fmt, *args):  # noqa: N802 - the base class's name
        if not self.config.get("quiet"):
            sys.stderr.write("mock: " + (fmt % args) + "\n")

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def decode_json(self, raw: bytes):
        encoding = self.headers.get("Content-Encoding", "").lower()
        try:
            if encoding == "gzip":
                import gzip
                raw = gzip.decompress(raw)
            elif encoding not in ("", "identity"):
                return None
            return json.loads(raw.decode("utf-8")) if raw else {}
        except (ValueError, OSError):
            return None

    def send_json(self, status: int, obj, headers=None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, headers=None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True

    def send_event(self, name: str, payload: dict) -> None:
        delay = self.config.get("delay_ms", 0)
        if delay:
            time.sleep(delay / 1000.0)
        self.wfile.write(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())
        self.wfile.flush()

    def do_GET(self):  # noqa: N802
        if self.path == "/_mock/stats":
            self.send_json(200, self.usage_log.stats())
        else:
            self.send_json(404, {"error": {"type": "not_found", "message": self.path}})

    def do_HEAD(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):  # noqa: N802
        raw = self.read_body()
        path = self.path.split("?", 1)[0]
        if path == "/_mock/config":
            update = self.decode_json(raw)
            if not isinstance(update, dict):
                self.send_json(400, {"error": "a JSON object is expected"})
                return
            with self.config_lock:
                for key, value in update.items():
                    if isinstance(value, dict) and isinstance(self.config.get(key), dict):
                        self.config[key] = dict(self.config[key], **value)
                    else:
                        self.config[key] = value
            self.send_json(200, {"ok": True})
            return
        body = self.decode_json(raw)
        if not isinstance(body, dict):
            self.send_json(400, {"error": {"type": "invalid_request_error", "message": "unreadable body"}})
            return
        self.serve_model(path, body)

    def serve_model(self, path: str, body: dict) -> None:
        raise NotImplementedError


def serve(handler_class, config: dict) -> None:
    """Binds, announces the port, serves until SIGTERM/SIGINT."""
    handler_class.config = config
    handler_class.usage_log = UsageLog(config.get("log"))
    server = ThreadingHTTPServer((config.get("host") or "127.0.0.1", config.get("port", 0)), handler_class)
    server.daemon_threads = True
    port = server.server_address[1]
    port_file = config.get("port_file")
    if port_file:
        tmp = f"{port_file}.tmp.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(tmp, port_file)
    print(f"PORT {port}", flush=True)

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
