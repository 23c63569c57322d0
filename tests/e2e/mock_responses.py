#!/usr/bin/python3
"""A mock of the OpenAI Responses API for the Codex CLI, with usage and rate limits that a test chooses.

POST /v1/responses answers a text/event-stream of response.created, response.output_item.done (one assistant
message) and response.completed whose response.usage carries the configured tokens; the response headers carry
the x-codex-* rate-limit values that Codex copies into its rollout's rate_limits. Each served response is
appended to --log as one JSON line:
  {"seq": N, "api": "responses", "path": "/v1/responses", "model": ..., "response_id": "resp_N",
   "time": <unix seconds>, "usage": {"input_tokens":..., "input_tokens_details": {"cached_tokens":...},
   "output_tokens":..., "output_tokens_details": {"reasoning_tokens":...}, "total_tokens":...}}
See mockserver.py for the port announcement and the /_mock/stats and /_mock/config endpoints.

  /usr/bin/python3 mock_responses.py --port-file /tmp/port --log /tmp/served.jsonl
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


class ResponsesHandler(mockserver.MockHandler):
    def serve_model(self, path, body):
        if path not in ("/v1/responses", "/responses"):
            self.send_json(404, {"error": {"type": "not_found", "message": path}})
            return
        cfg = dict(self.config)
        if cfg["status"] != 200:
            self.send_json(cfg["status"], {"error": {"type": "server_error", "message": "mock error"}})
            return
        n = next_id()
        model = body.get("model", "gpt-test")
        usage = response_usage(cfg["usage"])
        response = {
            "id": f"resp_{n}", "object": "response", "created_at": int(time.time()), "model": model,
            "status": "in_progress", "output": [], "usage": None,
        }
        message = {
            "type": "message", "id": f"msg_{n}", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": cfg["text"], "annotations": []}],
        }
        self.start_stream(rate_limit_headers(cfg))
        self.send_event("response.created", {"type": "response.created", "response": response})
        self.send_event("response.output_item.done",
                        {"type": "response.output_item.done", "output_index": 0, "item": message})
        done = dict(response, status="completed", output=[message], usage=usage)
        self.send_event("response.completed", {"type": "response.completed", "response": done})
        self.usage_log.record({"api": "responses", "path": path, "model": model, "response_id": f"resp_{n}",
                               "time": time.time(), "usage": usage})


def response_usage(u: dict) -> dict:
    return {
        "input_tokens": u["input_tokens"],
        "input_tokens_details": {"cached_tokens": u["cached_tokens"]},
        "output_tokens": u["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]},
        "total_tokens": u["input_tokens"] + u["output_tokens"],
    }


def rate_limit_headers(cfg: dict) -> dict:
    rl = cfg["rate_limits"]
    if not rl.get("enabled", True):
        return {}
    headers = {}
    for window in ("primary", "secondary"):
        headers[f"x-codex-{window}-used-percent"] = str(rl[f"{window}_used_percent"])
        headers[f"x-codex-{window}-window-minutes"] = str(rl[f"{window}_window_minutes"])
        headers[f"x-codex-{window}-reset-at"] = str(rl[f"{window}_reset_at"])
    headers["x-codex-credits-has-credits"] = "true" if rl["credits_has_credits"] else "false"
    headers["x-codex-credits-unlimited"] = "true" if rl["credits_unlimited"] else "false"
    headers["x-codex-credits-balance"] = str(rl["credits_balance"])
    return headers


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mockserver.add_common_args(p)
    p.add_argument("--input-tokens", type=int, default=1200)
    p.add_argument("--cached-tokens", type=int, default=200)
    p.add_argument("--output-tokens", type=int, default=34)
    p.add_argument("--reasoning-tokens", type=int, default=12)
    p.add_argument("--primary-used-percent", type=float, default=42.5)
    p.add_argument("--primary-window-minutes", type=int, default=300)
    p.add_argument("--primary-reset-at", type=int, help="unix seconds (default: start + window)")
    p.add_argument("--secondary-used-percent", type=float, default=12.0)
    p.add_argument("--secondary-window-minutes", type=int, default=10080)
    p.add_argument("--secondary-reset-at", type=int, help="unix seconds (default: start + window)")
    p.add_argument("--credits-balance", default="873.5")
    p.add_argument("--credits-unlimited", action="store_true")
    p.add_argument("--no-credits", action="store_true", help="x-codex-credits-has-credits: false")
    p.add_argument("--no-rate-limits", action="store_true", help="send no x-codex-* headers")
    a = p.parse_args()
    now = int(time.time())
    config = {
        "host": a.host, "port": a.port, "port_file": a.port_file, "log": a.log, "text": a.text, "delay_ms": a.delay_ms,
        "status": a.status, "quiet": a.quiet,
        "usage": {"input_tokens": a.input_tokens, "cached_tokens": a.cached_tokens,
                  "output_tokens": a.output_tokens, "reasoning_tokens": a.reasoning_tokens},
        "rate_limits": {
            "enabled": not a.no_rate_limits,
            "primary_used_percent": a.primary_used_percent, "primary_window_minutes": a.primary_window_minutes,
            "primary_reset_at": a.primary_reset_at or now + a.primary_window_minutes * 60,
            "secondary_used_percent": a.secondary_used_percent,
            "secondary_window_minutes": a.secondary_window_minutes,
            "secondary_reset_at": a.secondary_reset_at or now + a.secondary_window_minutes * 60,
            "credits_has_credits": not a.no_credits, "credits_unlimited": a.credits_unlimited,
            "credits_balance": a.credits_balance,
        },
    }
    mockserver.serve(ResponsesHandler, config)


if __name__ == "__main__":
    main()
