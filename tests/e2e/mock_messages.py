#!/usr/bin/python3
"""A mock of the Anthropic Messages API for Claude Code, with usage that a test chooses.

POST /v1/messages with "stream": true answers a text/event-stream of message_start (message.usage: input and
cache tokens), content_block_start, content_block_delta, content_block_stop, message_delta (output tokens),
message_stop; without "stream" it answers the whole message as JSON. POST /v1/messages/count_tokens answers a
count and is not logged. Each served message is appended to --log as one JSON line:
  {"seq": N, "api": "messages", "path": "/v1/messages", "model": ..., "message_id": "msg_mockN",
   "stream": true, "time": <unix seconds>, "usage": {"input_tokens":..., "cache_creation_input_tokens":...,
   "cache_read_input_tokens":..., "output_tokens":...}}
See mockserver.py for the port announcement and the /_mock/stats and /_mock/config endpoints.

  /usr/bin/python3 mock_messages.py --port-file /tmp/port --log /tmp/served.jsonl
"""

import argparse
import itertools
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mockserver  # noqa: E402

_ids = itertools.count(1)
_ids_lock = threading.Lock()


def next_id() -> int:
    with _ids_lock:
        return next(_ids)


class MessagesHandler(mockserver.MockHandler):
    def serve_model(self, path, body):
        if path in ("/v1/messages/count_tokens", "/messages/count_tokens"):
            self.send_json(200, {"input_tokens": self.config["usage"]["input_tokens"]})
            return
        if path not in ("/v1/messages", "/messages"):
            self.send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
            return
        cfg = dict(self.config)
        if cfg["status"] != 200:
            self.send_json(cfg["status"], {"type": "error", "error": {"type": "api_error", "message": "mock"}})
            return
        n = next_id()
        model = body.get("model", "claude-test")
        u = cfg["usage"]
        usage = {
            "input_tokens": u["input_tokens"],
            "cache_creation_input_tokens": u["cache_creation_input_tokens"],
            "cache_read_input_tokens": u["cache_read_input_tokens"],
            "output_tokens": u["output_tokens"],
        }
        message = {
            "id": f"msg_mock{n}", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
        }
        headers = {"request-id": f"req_mock{n}"}
        stream = bool(body.get("stream"))
        if stream:
            self.start_stream(headers)
            self.send_event("message_start", {
                "type": "message_start", "message": dict(message, usage=dict(usage, output_tokens=1))})
            self.send_event("content_block_start", {
                "type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
            self.send_event("content_block_delta", {
                "type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": cfg["text"]}})
            self.send_event("content_block_stop", {"type": "content_block_stop", "index": 0})
            self.send_event("message_delta", {
                "type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": u["output_tokens"]}})
            self.send_event("message_stop", {"type": "message_stop"})
        else:
            whole = dict(message, content=[{"type": "text", "text": cfg["text"]}], stop_reason="end_turn",
                         usage=usage)
            self.send_json(200, whole, headers)
        self.usage_log.record({"api": "messages", "path": path, "model": model, "message_id": f"msg_mock{n}",
                               "request_id": f"req_mock{n}", "stream": stream, "time": time.time(),
                               "usage": usage})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mockserver.add_common_args(p)
    p.add_argument("--input-tokens", type=int, default=900)
    p.add_argument("--cache-creation-tokens", type=int, default=300)
    p.add_argument("--cache-read-tokens", type=int, default=2000)
    p.add_argument("--output-tokens", type=int, default=7)
    a = p.parse_args()
    config = {
        "host": a.host, "port": a.port, "port_file": a.port_file, "log": a.log, "text": a.text, "delay_ms": a.delay_ms,
        "status": a.status, "quiet": a.quiet,
        "usage": {"input_tokens": a.input_tokens, "cache_creation_input_tokens": a.cache_creation_tokens,
                  "cache_read_input_tokens": a.cache_read_tokens, "output_tokens": a.output_tokens},
    }
    mockserver.serve(MessagesHandler, config)


if __name__ == "__main__":
    main()
