"""How soon `mkdocs serve` answers on an empty cache, and how soon a result appears on its page.

    python benchmarks/serve_first.py [--page draft-000/math/] [--runner activations] [--timeout 300]

Starts `python -m mkdocs serve` on a free 127.0.0.1 port with an empty cache (a temporary
LIVING_CACHE_DIR; the project's own cache is not touched), then prints:

- the seconds until the first page answered;
- the seconds until PAGE no longer shows RUNNER as pending (its result is on the page);
- the seconds until no page shows anything pending, checked on PAGE and the results overview.

It polls over HTTP (what a reader's browser gets after livereload's reload), so it measures the
server, not a browser. Figures vary with the machine and its load: run it on an idle machine and
say which (`lscpu`).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from machine_info import cpu_summary  # benchmarks/machine_info.py, beside this script

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode("utf-8", errors="replace")
    except OSError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--page", default="draft-000/math/", help="a page that shows RUNNER's result")
    parser.add_argument("--runner", default="activations")
    parser.add_argument("--pending-word", default="计算中", help="what a pending marker says (the site's language)")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory(prefix="serve-first-") as tmp:
        env = {**os.environ, "LIVING_CACHE_DIR": str(Path(tmp) / "cache"), "NO_MKDOCS_2_WARNING": "1"}
        env.pop("LIVING_EXECUTE", None)
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "-a", f"127.0.0.1:{port}"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first = result = everything = None
        marker = f"{args.pending_word}（{args.runner}）"
        try:
            while time.perf_counter() - started < args.timeout and everything is None:
                page = fetch(base + args.page)
                now = time.perf_counter() - started
                if page is not None and first is None:
                    first = now
                if page is not None and result is None and marker not in page:
                    result = now
                if page is not None and result is not None:
                    overview = fetch(base + "results/") or args.pending_word
                    if args.pending_word not in page and args.pending_word not in overview:
                        everything = now
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"machine: {cpu_summary()}")
    for label, value in (("first page answered", first), (f"{args.runner} on {args.page}", result),
                         ("nothing pending on the page and the overview", everything)):
        print(f"{label}: {'—' if value is None else f'{value:.1f} s'}")
    return 0 if everything is not None else 1


if __name__ == "__main__":
    sys.exit(main())
