#!/usr/bin/env python3
"""Judge a run of the official MCP conformance suite against the expected-failures list.

  conformance_report.py --scenarios LIST --results DIR --expected FILE

LIST is the output of `conformance list --server` (lines `  - <name> [versions]`); DIR is the
suite's `-o` directory, holding one `server-<scenario>-<timestamp>/checks.json` per scenario it ran;
FILE is conformance-expected-failures.txt (`<scenario> <match> <reason>` a line, <match> a regex
that every FAILURE message of the scenario must contain).

A scenario passes when its checks.json has at least one SUCCESS check and no FAILURE check
(WARNING and INFO checks are printed, not counted against it). Outcomes:
  PASS   passed, not listed          XFAIL  failed as listed (every FAILURE message matches)
  FAIL   failed, not listed; failed for another reason than listed; no results; or a listed
         name the suite does not know
  XPASS  passed although listed: reported loudly, not a failure (remove the line)
The last line is machine-readable: `CONFORMANCE pass=N fail=M xfail=K xpass=J`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

TS = re.compile(r"-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")


def read_expected(path: Path) -> dict[str, tuple[re.Pattern[str], str]]:
    out: dict[str, tuple[re.Pattern[str], str]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            sys.exit(f"{path}:{n}: write '<scenario> <match> <reason>'")
        name, match, reason = parts
        if name in out:
            sys.exit(f"{path}:{n}: '{name}' is listed twice")
        try:
            out[name] = (re.compile(match), reason)
        except re.error as e:
            sys.exit(f"{path}:{n}: bad regular expression {match!r}: {e}")
    return out


def read_scenarios(path: Path) -> list[str]:
    names = [m.group(1) for m in re.finditer(r"^\s*-\s+(\S+)", path.read_text(), re.M)]
    if not names:
        sys.exit(f"{path}: no scenarios found in the suite's list output")
    return names


def read_results(results: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for d in sorted(results.glob("server-*")):
        name = TS.sub("", d.name[len("server-"):])
        f = d / "checks.json"
        try:
            out[name] = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            out[name] = [{"id": name, "status": "FAILURE", "errorMessage": f"unreadable {f}: {e}"}]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--expected", type=Path, required=True)
    a = ap.parse_args()

    expected = read_expected(a.expected)
    scenarios = read_scenarios(a.scenarios)
    results = read_results(a.results)
    counts = {"pass": 0, "fail": 0, "xfail": 0, "xpass": 0}

    for name in scenarios:
        checks = results.get(name)
        if checks is None:
            counts["fail"] += 1
            print(f"FAIL   conformance/{name}: the suite produced no results for it")
            continue
        failures = [c for c in checks if c.get("status") == "FAILURE"]
        successes = [c for c in checks if c.get("status") == "SUCCESS"]
        warnings = [c for c in checks if c.get("status") == "WARNING"]
        passed = not failures and bool(successes)
        why = "; ".join(f"[{c.get('id')}] {c.get('errorMessage') or c.get('description')}" for c in failures) or "no SUCCESS check"
        if name in expected:
            match, reason = expected[name]
            other = [c for c in failures if not match.search(str(c.get("errorMessage") or ""))]
            if passed:
                counts["xpass"] += 1
                print(f"XPASS  conformance/{name}: UNEXPECTED PASS ({len(successes)} checks): remove it from {a.expected.name}")
            elif not failures or other:
                counts["fail"] += 1
                print(f"FAIL   conformance/{name}: failed for another reason than listed (/{match.pattern}/: {reason}): {why}")
            else:
                counts["xfail"] += 1
                print(f"XFAIL  conformance/{name}: {why}  (expected: {reason})")
        elif passed:
            counts["pass"] += 1
            print(f"PASS   conformance/{name} ({len(successes)} checks: {', '.join(c.get('id', '?') for c in successes)})")
        else:
            counts["fail"] += 1
            print(f"FAIL   conformance/{name}: {why}")
        for c in warnings:
            print(f"       warning [{c.get('id')}] {c.get('errorMessage') or c.get('description')}")

    for name in sorted(set(expected) - set(scenarios)):
        counts["fail"] += 1
        print(f"FAIL   conformance/{name}: listed in {a.expected.name} but the suite has no such scenario (renamed or removed?)")
    for name in sorted(set(results) - set(scenarios)):
        print(f"note   conformance/{name}: results present for a scenario the list did not name")

    print("CONFORMANCE " + " ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
