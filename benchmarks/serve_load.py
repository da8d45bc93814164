"""Load on `snapsafe serve` over loopback: C concurrent clients for T seconds (bounded).

    python benchmarks/serve_load.py [--clients 4] [--seconds 10] [--max-clones 4] [--fresh]

Every request carries a unique id that the hello example echoes back, so lost, duplicated or
crossed responses are counted exactly (all must be zero). Reports throughput, latency
min/p50/p99, status codes, and cold versus warm starts from /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import aiohttp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _stats import fmt, machine, stats  # noqa: E402

MAX_REQUESTS = 200_000  # a hard bound on the whole run, whatever --seconds says


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(session: aiohttp.ClientSession, url: str, worker: int, deadline: float, out: dict) -> None:
    n = 0
    while time.monotonic() < deadline and out["sent"] < MAX_REQUESTS:
        request_id = f"w{worker}-{n}"
        n += 1
        out["sent"] += 1
        start = time.perf_counter()
        async with session.post(url, json={"name": request_id}) as resp:
            body = await resp.read()
            out["latency"].append((time.perf_counter() - start) * 1000)
            out["status"][resp.status] = out["status"].get(resp.status, 0) + 1
            if resp.status == 200:
                echoed = json.loads(body).get("name")
                out["seen"][echoed] = out["seen"].get(echoed, 0) + 1
                if echoed != request_id:
                    out["crossed"] += 1


async def load(url: str, clients: int, seconds: float) -> dict:
    out: dict = {"sent": 0, "latency": [], "status": {}, "seen": {}, "crossed": 0}
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session, url, w, deadline, out) for w in range(clients)))
        out["elapsed"] = time.perf_counter() - start
    return out


def starts(metrics_text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    result = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "snapsafe_starts":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    result[sample.labels["kind"]] = sample.value
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-clones", type=int, default=4)
    parser.add_argument("--min-idle", type=int, default=2)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    port = free_port()
    cmd = ["snapsafe", "serve", f"{os.path.dirname(HERE)}/examples/hello.py:handler", "--port", str(port),
           "--max-clones", str(args.max_clones), "--min-idle", str(args.min_idle)] + (["--fresh"] if args.fresh else [])
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "listening on" in server.stdout.readline()
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
        out = asyncio.run(load(url, args.clients, args.seconds))
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
            kinds = starts(resp.read().decode())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    ok = out["status"].get(200, 0)
    lost = out["sent"] - sum(out["status"].values())
    duplicated = sum(n - 1 for n in out["seen"].values() if n > 1)
    print(f"machine: {machine()}")
    print(f"serve hello: {args.clients} clients, {args.seconds:g} s, max {args.max_clones} clones"
          f"{', fresh' if args.fresh else ''}")
    print(f"  requests {out['sent']}, answered 200: {ok}, statuses {out['status']}")
    print(f"  throughput {ok / out['elapsed']:.0f} invocations/s")
    print(f"  latency {fmt(stats(out['latency']))}")
    print(f"  starts: cold {kinds.get('cold', 0):.0f}, warm {kinds.get('warm', 0):.0f}")
    print(f"  lost {lost}, duplicated {duplicated}, crossed {out['crossed']} (all must be 0)")


if __name__ == "__main__":
    main()
