"""How fast an owner's decision reaches the stream workers, as a user drives it.

    python -m gsp.tools.bench.revocation [--rounds 5]

Starts `gsp serve` (embedded broker, one worker) in a throwaway GSP_HOME, enrols an owner and a
consumer with the CLI, and per round: approves a subscription version and times until the
worker's /health counts it, then suspends it and times until the worker drops it. Times start
when the CLI command returns (the broker has acknowledged the change by then). Prints one line
per round and the worst of each, on loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from gsp.runtime.embedded import free_port

__all__ = ["main"]

OWNER, CONSUMER = "VN/GOV/bo-khoa-hoc-va-cong-nghe/cuc-vien-thong", "VN/GOV/bo-y-te/bhxh"
SID = "bo-y-te-bhxh:telecom.subscriber"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gsp.tools.bench.revocation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="approve/suspend rounds (default 5)")
    rounds = parser.parse_args(argv).rounds
    home = Path(tempfile.mkdtemp(prefix="gsp-bench-revocation-"))
    env = {**os.environ, "GSP_HOME": str(home), "GSP_API_PORT": str(free_port())}
    env.pop("GSP_TOKEN", None)

    def gsp(*args: str, token: str | None = None) -> str:
        done = subprocess.run([sys.executable, "-m", "gsp", *args], env={**env, **({"GSP_TOKEN": token} if token else {})},
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise SystemExit(f"gsp {args[0]} {args[1]} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    server = subprocess.Popen([sys.executable, "-m", "gsp", "serve"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        for _ in range(5):  # the first start announces the admin token, then where it serves
            if server.stdout.readline().startswith("gsp: control plane"):
                break
        worker = json.loads((home / "runtime.json").read_text())["workers"][0]
        wait(lambda: subscriptions(worker) is not None, "the worker to answer")
        gsp("agency", "register", CONSUMER, "--name", "Bảo hiểm xã hội Việt Nam")
        gsp("agency", "register", OWNER, "--name", "Cục Viễn thông")
        consumer = gsp("credential", "issue", "--agency", CONSUMER, "--role", "consumer", "--token-only")
        owner = gsp("credential", "issue", "--agency", OWNER, "--role", "owner:telecom.subscriber", "--token-only")
        ask = ("--purpose", "đo thời gian", "--legal-basis", "kiểm thử")
        gsp("subscription", "request", "--dataset", "telecom.subscriber", "--fields", "msisdn", *ask, token=consumer)
        picked, dropped = [], []
        for n in range(rounds):
            gsp("subscription", "approve", SID, token=owner)
            picked.append(wait(lambda: subscriptions(worker) == 1, "the approval"))
            gsp("subscription", "suspend", SID, "--reason", "đo", token=owner)
            dropped.append(wait(lambda: subscriptions(worker) == 0, "the suspension"))
            print(f"round {n + 1}: worker has the approval {picked[-1]:.3f} s after the CLI returned, "
                  f"drops the suspension {dropped[-1]:.3f} s after", flush=True)
            gsp("subscription", "change", SID, "--fields", "msisdn,carrier" if n % 2 == 0 else "msisdn", *ask,
                token=consumer)
        print(f"worst: approval {max(picked):.3f} s, suspension {max(dropped):.3f} s ({rounds} rounds)")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
    return 0


def subscriptions(worker: str) -> int | None:
    try:
        with urllib.request.urlopen(worker + "/health", timeout=1) as response:
            return json.load(response).get("subscriptions")
    except OSError:
        return None


def wait(ready: Callable[[], bool], what: str, timeout_s: float = 60.0) -> float:
    """Seconds until ``ready()``, polled every 5 ms."""
    started = time.monotonic()
    while not ready():
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.005)
    return time.monotonic() - started


if __name__ == "__main__":
    sys.exit(main())
