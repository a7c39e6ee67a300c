"""Start-up overhead of the plugin when it is installed but not used.

Runs ``pytest`` on a folder with one trivial test, with the plugin (as installed) and with
``-p no:aligngate``, alternating, and prints the median wall time of each and the difference;
then the modules the plugin imports at load (``python -X importtime``).

    python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_pytest(folder: Path, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(folder)],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def plugin_imports() -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of what importing the plugin module loads beyond pytest."""
    code = "import pytest, pytest_aligngate.plugin"
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True
    ).stderr
    found, inside = [], False
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if name == "pytest":
            inside = True
            continue
        if inside and not name.startswith(" "):
            found.append((int(cumulative), name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_trivial.py").write_text("def test_ok():\n    assert True\n")
        run_pytest(folder)  # warm the file system cache
        with_plugin, without = [], []
        for _ in range(args.runs):
            with_plugin.append(run_pytest(folder))
            without.append(run_pytest(folder, "-p", "no:aligngate"))
    a, b = statistics.median(with_plugin), statistics.median(without)
    print(f"pytest on one trivial test, median of {args.runs} runs")
    print(f"  with pytest-aligngate installed (unused): {a * 1000:.0f} ms")
    print(f"  with -p no:aligngate:                     {b * 1000:.0f} ms")
    print(f"  overhead: {(a - b) * 1000:+.0f} ms")
    print("top-level modules imported by the plugin at load (cumulative import time):")
    for micros, name in plugin_imports():
        print(f"  {micros / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
