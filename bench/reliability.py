"""Issue #10's figures in one command: the reliability tests at their full sizes, then a summary.

Run: .venv/bin/python bench/reliability.py            (full: about an hour, most of it the 10-minute storm
                                                        and 50 kill-restart cycles)
     .venv/bin/python bench/reliability.py --quick    (the CI sizes, a few minutes)
     .venv/bin/python bench/reliability.py --only kill,ssrf
     VEILLE_TEST_STORM_SECONDS=60 .venv/bin/python bench/reliability.py --only storm
                                                      (a size knob set in the environment wins)

Each part is `pytest` on one test file with its size knobs set (VEILLE_TEST_*), in its own process;
the tests append their measured figures as JSON lines to the file named by VEILLE_TEST_FIGURES, which
this script prints as a table beside each part's verdict (passed / failed / xfailed) and wall time.
PostgreSQL: set VEILLE_TEST_DATABASE_URL to run the database-backed parts there too (the restart test
always uses its own private server). Paste the output into docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name: (test file, full-size knobs, CI-size knobs, what it shows)
PARTS: dict[str, tuple[str, dict[str, str], dict[str, str], str]] = {
    "kill": ("tests/test_reliability_kill.py", {"VEILLE_TEST_KILLS": "50"}, {"VEILLE_TEST_KILLS": "2"},
             "SIGKILL at random points, restarted each time"),
    "storm": ("tests/test_reliability_telegram.py", {"VEILLE_TEST_STORM_SECONDS": "600"},
              {"VEILLE_TEST_STORM_SECONDS": "10"}, "Telegram 500/502/reset/timeout/429 storm"),
    "database": ("tests/test_reliability_database.py",
                 {"VEILLE_TEST_PG_RESTARTS": "5", "VEILLE_TEST_PG_DOWNTIME": "10", "VEILLE_TEST_LOCK_SECONDS": "10"},
                 {}, "PostgreSQL restarts, SQLite locked, disk full, read-only"),
    "fuzz": ("tests/test_fuzz.py", {"VEILLE_FUZZ_EXAMPLES": "10000"}, {},
             "hypothesis: feed parser, query parser, renderer"),
    "hostile": ("tests/test_hostile_pipeline.py", {}, {}, "hostile items end to end, XML bombs"),
    "ssrf": ("tests/test_ssrf.py", {}, {}, "SSRF bypass table through the real client"),
    "abuse": ("tests/test_abuse.py", {"VEILLE_TEST_SPAM_COMMANDS": "1000"}, {},
              "deep links, per-user limits, 1,000-command spam, secrets"),
}


def run_part(name: str, quick: bool, figures: Path) -> dict[str, object]:
    path, full, small, _ = PARTS[name]
    env = {**(small if quick else full), **os.environ, "VEILLE_TEST_FIGURES": str(figures)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", path, "-o", "timeout=3600", "-rxXs"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    seconds = time.monotonic() - started
    summary = next((line for line in reversed(result.stdout.splitlines()) if re.search(r"\d+ (passed|failed)", line)),
                   result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "no output")
    if result.returncode not in (0, 1):
        summary += f" (pytest exit {result.returncode})"
    return {"part": name, "tests": summary.strip("= "), "seconds": round(seconds, 1),
            "failed": result.returncode != 0, "output": result.stdout[-4000:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI sizes instead of the full ones")
    parser.add_argument("--only", default="", help="comma-separated parts: " + ",".join(PARTS))
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(PARTS)
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose among {', '.join(PARTS)}")
    figures = Path(tempfile.mkstemp(prefix="veille-figures-", suffix=".jsonl")[1])
    print(f"# Veille reliability run ({'quick' if args.quick else 'full'} sizes), {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"# python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"database {'PostgreSQL' if os.environ.get('VEILLE_TEST_DATABASE_URL') else 'SQLite'}\n")
    results = []
    for name in names:
        print(f"## {name}: {PARTS[name][3]}", flush=True)
        result = run_part(name, args.quick, figures)
        results.append(result)
        print(f"   {result['tests']} in {result['seconds']} s", flush=True)
        if result["failed"]:
            print("   --- pytest output (tail) ---\n" + str(result["output"]))
    print("\n## Figures (one line per measuring test)")
    for line in figures.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        test = record.pop("test")
        for detail in ("phases", "delays_s", "per_restart"):  # per-kill/restart detail: in the JSON file
            record.pop(detail, None)
        print(f"- {test}: " + ", ".join(f"{k}={v}" for k, v in record.items()))
    print(f"\n(raw figures: {figures})")
    return 1 if any(r["failed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
