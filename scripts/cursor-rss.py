#!/usr/bin/env python3
"""Benchmark (scripts/bench runs it): page through ROWS rows with continuation cursors and
sample the server's RSS, to show that paging a huge result keeps the server's memory flat.

  cursor-rss.py --url http://127.0.0.1:PORT/mcp --pid SERVER_PID [--rows 10000000]

Uses the official MCP Python SDK (stateless 2026-07-28 client), the venv scripts/interop makes.
Reads `SELECT g, md5(g::text) FROM generate_series(1, ROWS) g`, then `fetch` until the last page,
checking that the rows arrive in order with none skipped or repeated. Prints one JSON line:
rows, pages, seconds, RSS at start / peak / end (KiB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def run(args: argparse.Namespace) -> dict:
    sql = f"SELECT g, md5(g::text) AS h FROM generate_series(1, {args.rows}) g"
    start = rss_kb(args.pid)
    peak = start
    samples = []
    t0 = time.monotonic()
    async with Client(streamable_http_client(args.url)) as client:
        r = await client.call_tool("pg_query", {"action": "read", "sql": sql})
        sc = r.structured_content
        if r.is_error or not sc:
            raise SystemExit(f"read failed: {r.content}")
        expect = 1
        pages = 0
        while True:
            rows = sc["rows"]
            for row in rows:
                if row[0] != expect:
                    raise SystemExit(f"row {expect} expected, got {row[0]} on page {pages}")
                expect += 1
            pages += 1
            if pages % 50 == 0:
                now = rss_kb(args.pid)
                peak = max(peak, now)
                samples.append(now)
            cursor = sc.get("next_cursor")
            if not cursor:
                break
            r = await client.call_tool("pg_query", {"action": "fetch", "cursor": cursor})
            sc = r.structured_content
            if r.is_error or not sc:
                raise SystemExit(f"fetch failed after {expect - 1} rows: {r.content}")
    if expect - 1 != args.rows:
        raise SystemExit(f"{expect - 1} rows arrived, {args.rows} expected")
    await asyncio.sleep(2)
    return {
        "label": "cursor-rss",
        "rows": args.rows,
        "pages": pages,
        "seconds": round(time.monotonic() - t0, 1),
        "rss_start_kb": start,
        "rss_peak_kb": max(peak, *samples) if samples else peak,
        "rss_end_kb": rss_kb(args.pid),
        "rss_samples_kb": samples[:: max(1, len(samples) // 10)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--rows", type=int, default=10_000_000)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
