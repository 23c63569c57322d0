#!/usr/bin/python3
"""The mock model servers driven by the real provider CLIs (no dormant involved): checks that a real CLI
accepts what a mock serves and writes the mock's usage into its own local logs, which is what dormant's meter
reads (issue 5). Each run compares the CLI's log with the mock's served-usage log exactly.

  test_mocks.py codex-exec         `codex exec` one turn -> a rollout under $CODEX_HOME/sessions/Y/M/D/;
                                   then the mock's usage is changed live and a second session has it
  test_mocks.py codex-app-server   `codex app-server`, two turns over JSON-RPC -> a rollout, originator ours
  test_mocks.py claude             `claude -p` one turn -> ~/.claude/projects/<project>/<session>.jsonl
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import urllib.request

sys.dont_write_bytecode = True
from e2e_lib import HERE, PYTHON, check, log, npm_binary, run_test  # noqa: E402

CODEX_USAGE = {"input": 1500, "cached": 300, "output": 55, "reasoning": 21}
CLAUDE_USAGE = {"input": 1100, "cache_creation": 250, "cache_read": 4000, "output": 9}


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def codex_mock(env) -> int:
    port = env.start_mock("responses", "--quiet",
                          "--input-tokens", str(CODEX_USAGE["input"]),
                          "--cached-tokens", str(CODEX_USAGE["cached"]),
                          "--output-tokens", str(CODEX_USAGE["output"]),
                          "--reasoning-tokens", str(CODEX_USAGE["reasoning"]),
                          "--primary-used-percent", "42.5", "--credits-balance", "873.5")
    env.write_codex_config(port)
    return port


def mock_call(port: int, method: str, path: str, body=None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def check_rollout(env, turns: int, originator: str) -> None:
    rollouts = glob.glob(os.path.join(env.codex_home, "sessions", "*", "*", "*", "rollout-*.jsonl"))
    check(len(rollouts) == 1, "one rollout under $CODEX_HOME/sessions/YYYY/MM/DD/", rollouts)
    lines = read_jsonl(rollouts[0])
    meta = next(ln["payload"] for ln in lines if ln.get("type") == "session_meta")
    check(meta.get("originator") == originator and meta.get("cli_version") == "0.169.0",
          f"session_meta names originator {originator} and cli_version 0.169.0",
          {k: meta.get(k) for k in ("originator", "cli_version")})
    records = [ln["payload"]["usage"] for ln in lines if ln.get("type") == "token_usage_record"]
    served = env.served("responses")
    check(len(served) == turns and len(records) == turns,
          f"{turns} responses served and {turns} token_usage_record lines", (len(served), len(records)))
    want = {"input_tokens": CODEX_USAGE["input"] * turns, "cached_input_tokens": CODEX_USAGE["cached"] * turns,
            "output_tokens": CODEX_USAGE["output"] * turns,
            "reasoning_output_tokens": CODEX_USAGE["reasoning"] * turns}
    got = {k: sum(r[k] for r in records) for k in want}
    mock = {"input_tokens": sum(s["usage"]["input_tokens"] for s in served),
            "cached_input_tokens": sum(s["usage"]["input_tokens_details"]["cached_tokens"] for s in served),
            "output_tokens": sum(s["usage"]["output_tokens"] for s in served),
            "reasoning_output_tokens": sum(s["usage"]["output_tokens_details"]["reasoning_tokens"] for s in served)}
    check(got == want == mock, "token_usage_record totals equal what the mock served", (got, mock))
    counts = [ln["payload"] for ln in lines if ln.get("type") == "event_msg"
              and ln["payload"].get("type") == "token_count" and ln["payload"].get("info")]
    last = counts[-1]["info"]["total_token_usage"] if counts else {}
    check({k: last.get(k) for k in want} == want, "the last cumulative token_count equals the served total", last)
    rl = counts[-1].get("rate_limits") or {}
    check(rl.get("primary", {}).get("used_percent") == 42.5 and rl.get("credits", {}).get("balance") == "873.5",
          "rate_limits carry the mock's x-codex-* headers", rl)


def run_codex_exec(env, codex: str) -> None:
    r = subprocess.run([codex, "exec", "--skip-git-repo-check", "hi"], env=env.env, cwd=env.work,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    check(r.returncode == 0 and "Hello from mock." in r.stdout, "codex exec runs a turn against the mock",
          f"rc={r.returncode} stdout={r.stdout[-300:]!r} stderr={r.stderr[-600:]!r}")


def codex_exec(env, _a) -> None:
    codex = npm_binary("codex")
    port = codex_mock(env)
    run_codex_exec(env, codex)
    check_rollout(env, 1, "codex_exec")

    # Usage changed while the mock runs: a second session carries the new figures; the stats sum both.
    mock_call(port, "POST", "/_mock/config", {"usage": {"input_tokens": 7000, "output_tokens": 700}})
    run_codex_exec(env, codex)
    rollouts = glob.glob(os.path.join(env.codex_home, "sessions", "*", "*", "*", "rollout-*.jsonl"))
    records = [ln["payload"]["usage"] for path in rollouts for ln in read_jsonl(path)
               if ln.get("type") == "token_usage_record"]
    stats = mock_call(port, "GET", "/_mock/stats")
    got = {"input_tokens": sum(r["input_tokens"] for r in records),
           "output_tokens": sum(r["output_tokens"] for r in records)}
    want = {"input_tokens": CODEX_USAGE["input"] + 7000, "output_tokens": CODEX_USAGE["output"] + 700}
    check(len(rollouts) == 2 and stats["requests"] == 2 and got == want
          and {k: stats["usage"][k] for k in want} == want,
          "after POST /_mock/config the next session carries the new usage; /_mock/stats sums both",
          (len(rollouts), stats, got))


def codex_app_server(env, _a) -> None:
    codex = npm_binary("codex")
    codex_mock(env)
    r = subprocess.run([PYTHON, os.path.join(HERE, "jsonrpc.py"), "--timeout", "60", "--client", "dormant_e2e",
                        "--turn", "hi", "--turn", "and again", "--", codex, "app-server"],
                       env=env.env, cwd=env.work, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=180)
    check(r.returncode == 0, "jsonrpc.py ran initialize and two turns on codex app-server",
          f"rc={r.returncode} stdout={r.stdout[-600:]!r} stderr={r.stderr[-600:]!r}")
    check_rollout(env, 2, "dormant_e2e")


def claude(env, _a) -> None:
    claude_bin = npm_binary("claude")
    port = env.start_mock("messages", "--quiet",
                          "--input-tokens", str(CLAUDE_USAGE["input"]),
                          "--cache-creation-tokens", str(CLAUDE_USAGE["cache_creation"]),
                          "--cache-read-tokens", str(CLAUDE_USAGE["cache_read"]),
                          "--output-tokens", str(CLAUDE_USAGE["output"]))
    r = subprocess.run([claude_bin, "-p", "hi"], env=env.claude_env(port), cwd=env.work,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    check(r.returncode == 0 and "Hello from mock." in r.stdout, "claude -p runs a turn against the mock",
          f"rc={r.returncode} stdout={r.stdout[-300:]!r} stderr={r.stderr[-600:]!r}")
    logs = glob.glob(os.path.join(env.home, ".claude", "projects", "*", "*.jsonl"))
    check(len(logs) == 1, "one project log under ~/.claude/projects/", logs)
    served = env.served("messages")
    usages = {}
    for ln in read_jsonl(logs[0]):
        msg = ln.get("message") if isinstance(ln.get("message"), dict) else {}
        if ln.get("type") == "assistant" and "usage" in msg:
            usages[msg["id"]] = msg["usage"]  # one message may be logged more than once: key on its id
    check(set(usages) == {s["message_id"] for s in served}, "the log's assistant message ids are the served ones",
          (sorted(usages), [s["message_id"] for s in served]))
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    got = {k: sum(u[k] for u in usages.values()) for k in keys}
    mock = {k: sum(s["usage"][k] for s in served) for k in keys}
    check(got == mock and mock["input_tokens"] == CLAUDE_USAGE["input"] * len(served),
          "message.usage totals equal what the mock served", (got, mock))
    log(f"claude made {len(served)} model request(s)")


if __name__ == "__main__":
    cases = {"codex-exec": codex_exec, "codex-app-server": codex_app_server, "claude": claude}
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("case", choices=sorted(cases))
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args()
    run_test(f"mock-{args.case}", lambda env: cases[args.case](env, args), args.keep)
