"""The command a user runs, timed whole: ``aligngate check`` as a subprocess against a test server.

The simulated server runs in its own process and answers every call after a fixed latency. For each
latency the benchmark times, as CI sees them (process start to exit):

* a full run, cache off: wall time, the latency-bound limit and their ratio;
* a fully cached rerun of the same audit (every answer and score from the cache);
* ``aligngate --version`` (start-up).

The limit is ``calls * latency / slots + latency`` for the busier of the two bounds (the models'
``concurrency`` slots, shared by base and candidate on one server, and the judge's), plus one latency
for the judge's anchor check before the first probe.

    python benchmarks/command_wall.py [--latency 0.25 0.1] [--sample 50] [--slots 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

BASE, CANDIDATE = "sim:aligned", "sim:regress=shutdown_attitude"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(latency: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pytest_aligngate.testing", "--port", str(port), "--latency", str(latency)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/models", timeout=1)
            break
        except OSError as exc:
            if getattr(exc, "code", None) == 404:  # up: it lists no models
                break
            time.sleep(0.05)
    return server, url


def timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, nargs="+", default=[0.25, 0.1], help="Seconds per call")
    parser.add_argument("--sample", type=int, default=50, help="Probes per axis (default 50: 200 probes)")
    parser.add_argument("--slots", type=int, default=16, help="Concurrency of the models and of the judge")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per measurement (default 3)")
    args = parser.parse_args()
    command = [str(Path(sys.executable).with_name("aligngate"))]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f} at start")
    startup = [timed([*command, "--version"], env)[0] for _ in range(args.repeat)]
    print(f"aligngate --version: median {statistics.median(startup):.3f}s over {args.repeat}")
    for latency in args.latency:
        server, url = start_server(latency)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                config = {
                    "models": {
                        "base_url": url,
                        "concurrency": args.slots,
                        "temperature": 0.0,
                        "max_retries": 1,
                    },
                    "judge": {"model": "sim-judge", "concurrency": args.slots},
                    "probes": {"sample": args.sample},
                }
                path = folder / "aligngate.yaml"
                path.write_text(yaml.safe_dump(config), encoding="utf-8")
                check = [*command, "check", "--config", str(path), "--base", BASE, "--candidate", CANDIDATE]
                walls = []
                for i in range(args.repeat):
                    out = folder / f"cold-{i}"
                    wall, code = timed(
                        [*check, "--output-dir", str(out), "--cache-mode", "off", "--quiet"], env
                    )
                    walls.append(wall)
                report = json.loads((out / "report.json").read_text(encoding="utf-8"))
                model_calls = sum(1 for p in report["prompts"] for side in ("base", "candidate"))
                probes = len(report["prompts"])
                limit = model_calls * latency / args.slots + latency + latency
                cached_dir = folder / "cached"
                timed([*check, "--output-dir", str(cached_dir), "--quiet"], env)
                cached = [
                    timed([*check, "--output-dir", str(cached_dir), "--quiet"], env)[0]
                    for _ in range(args.repeat)
                ]
                wall = statistics.median(walls)
                print(
                    f"latency {latency * 1000:.0f} ms, {probes} probes, {model_calls} model calls, "
                    f"exit {code}: wall median {wall:.2f}s (min {min(walls):.2f}), limit {limit:.2f}s, "
                    f"ratio {wall / limit:.2f}; fully cached rerun median {statistics.median(cached):.2f}s"
                )
        finally:
            server.terminate()
            server.wait()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
