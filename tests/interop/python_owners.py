#!/usr/bin/env python3
"""Interop check: handle ownership by principal, completions and logging, driven by the official
MCP Python SDK against a ColdQuery started with two bearer tokens (alice, bob) and a small
session cap (scripts/interop starts it with COLDQUERY_MAX_SESSIONS=4, so 2 per caller).

1. A reconnecting token client keeps its handle: alice begins a pg_tx in a 2025-11-25 MCP
   session and leaves without DELETE (as the clients that were tried do); a new connection with
   the same token (stateless 2026-07-28) lists the handle, writes with it and commits it.
2. A foreign principal gets session_not_found: bob cannot see, use or end alice's handle.
3. One leaky caller cannot block another: alice fills her per-caller cap and her next begin is
   limit_exceeded (saying how many are hers); bob's begin still works.
4. completion/complete offers the runner's table for the resource template's `table` argument.
5. logging/setLevel warning, then a truncated read sends a notifications/message warning.

Exit 0 when every check passed; 1 with a message naming the failed check otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from typing import Any

import mcp
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from python_client import CheckFailed, check, flatten, ok_result, short, text_of


def http(token: str):
    return create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})


def error_of(result, category: str, what: str) -> dict[str, Any]:
    check(result.is_error is True, f"{what}: isError", short(text_of(result)))
    err = (result.structured_content or {}).get("error") or {}
    check(err.get("category") == category, f"{what}: category {category}", short(err))
    return err


async def stateless(token: str, url: str, body):
    async with http(token) as hc:
        async with Client(streamable_http_client(url, http_client=hc)) as client:
            check(client.protocol_version == "2026-07-28", "stateless client negotiated 2026-07-28", client.protocol_version)
            return await body(client)


async def run(args: argparse.Namespace) -> None:
    url, table, label = args.url, args.table, args.label

    # 1. Alice begins in an MCP session and goes away without DELETE.
    async with AsyncExitStack() as stack:
        hc = await stack.enter_async_context(http(args.alice))
        read, write = await stack.enter_async_context(
            streamable_http_client(url, http_client=hc, terminate_on_close=False)
        )
        s = await stack.enter_async_context(ClientSession(read, write))
        await s.initialize()
        sc = ok_result(await s.call_tool("pg_tx", {"action": "begin"}), "alice: pg_tx begin")
        handle = sc["session_id"]
        ok_result(
            await s.call_tool(
                "pg_query",
                {"action": "write", "sql": f"INSERT INTO {table} (client, note) VALUES ($1, 'reconnected')", "params": [label], "session_id": handle},
            ),
            "alice: write in the transaction",
        )
    print("  alice left her MCP session without DELETE, holding one handle")

    # 2. Bob, another principal, sees nothing of it and cannot end it.
    async def bob(client: Client):
        listed = ok_result(await client.call_tool("pg_tx", {"action": "list"}), "bob: pg_tx list")
        ids = [x.get("id") for x in listed.get("sessions", [])]
        check(handle not in ids, "bob's list does not show alice's handle", short(listed))
        for action in ("commit", "rollback"):
            error_of(await client.call_tool("pg_tx", {"action": action, "session_id": handle}), "session_not_found", f"bob: pg_tx {action} of alice's handle")
        error_of(
            await client.call_tool("pg_query", {"action": "read", "sql": "SELECT 1", "session_id": handle}),
            "session_not_found",
            "bob: a read with alice's handle",
        )

    await stateless(args.bob, url, bob)

    # 1 (cont.). Alice reconnects (stateless, same token): lists, uses and commits her handle.
    async def alice_again(client: Client):
        listed = ok_result(await client.call_tool("pg_tx", {"action": "list"}), "alice again: pg_tx list")
        ids = [x.get("id") for x in listed.get("sessions", [])]
        check(handle in ids, "alice's new connection lists the handle she left open", short(listed))
        sc = ok_result(
            await client.call_tool("pg_query", {"action": "read", "sql": f"SELECT count(*) FROM {table} WHERE client = $1", "params": [label], "session_id": handle}),
            "alice again: read in her transaction",
        )
        check(sc.get("rows") == [[1]], "her uncommitted row is there inside the transaction", short(sc))
        sc = ok_result(await client.call_tool("pg_tx", {"action": "commit", "session_id": handle}), "alice again: pg_tx commit")
        check(sc.get("committed") is True or "commit" in short(sc).lower(), "the commit says committed", short(sc))

    await stateless(args.alice, url, alice_again)

    # 3. One leaky caller cannot block another.
    async def leak(client: Client):
        mine = []
        for i in range(2):
            sc = ok_result(await client.call_tool("pg_tx", {"action": "begin"}), f"alice: leaked begin {i + 1}")
            mine.append(sc["session_id"])
        err = error_of(await client.call_tool("pg_tx", {"action": "begin"}), "limit_exceeded", "alice: begin past her per-caller cap")
        msg = err.get("message", "")
        check("yours" in msg or "your" in msg, "limit_exceeded says how many are the caller's", msg)
        check("pg_query transaction" in msg, "limit_exceeded names pg_query transaction for one-call atomic work", msg)
        return mine

    leaked = await stateless(args.alice, url, leak)

    async def bob_begins(client: Client):
        sc = ok_result(await client.call_tool("pg_tx", {"action": "begin"}), "bob: begin while alice is at her cap")
        ok_result(await client.call_tool("pg_tx", {"action": "rollback", "session_id": sc["session_id"]}), "bob: rollback")

    await stateless(args.bob, url, bob_begins)

    async def clean(client: Client):
        for h in leaked:
            ok_result(await client.call_tool("pg_tx", {"action": "rollback", "session_id": h}), "alice: rollback a leaked handle")

    await stateless(args.alice, url, clean)

    # 4 and 5. Completions and logging, in an MCP session (logging/setLevel is per session).
    logs: list[Any] = []

    async def on_log(params) -> None:
        logs.append(params)

    async with AsyncExitStack() as stack:
        hc = await stack.enter_async_context(http(args.alice))
        read, write = await stack.enter_async_context(streamable_http_client(url, http_client=hc))
        s = await stack.enter_async_context(ClientSession(read, write, logging_callback=on_log))
        init = await s.initialize()
        check(init.capabilities.completions is not None, "the server declares completions", short(str(init.capabilities)))
        check(init.capabilities.logging is not None, "the server declares logging", short(str(init.capabilities)))
        ref = mcp.types.ResourceTemplateReference(type="ref/resource", uri="postgres://schema/{schema}/{table}")
        done = await s.complete(ref, {"name": "table", "value": table[:7]}, {"schema": "public"})
        values = done.completion.values
        check(table in values, f"completion of table '{table[:7]}' offers {table}", values)
        await s.set_logging_level("warning")
        sc = ok_result(
            await s.call_tool("pg_query", {"action": "read", "sql": "SELECT g FROM generate_series(1, 5) g", "max_rows": 2}),
            "a read cut at max_rows 2",
        )
        check(sc.get("truncated") is True, "the read is truncated", short(sc))
        for _ in range(50):
            if logs:
                break
            await asyncio.sleep(0.05)
        check(any(getattr(p, "level", None) == "warning" and "truncated" in short(getattr(p, "data", "")) for p in logs),
              "a notifications/message warning says the result was truncated", [short(str(p)) for p in logs])
        if sc.get("next_cursor"):
            ok_result(await s.call_tool("pg_query", {"action": "close_cursor", "cursor": sc["next_cursor"]}), "close the cursor")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--alice", required=True, help="alice's bearer token")
    ap.add_argument("--bob", required=True, help="bob's bearer token")
    ap.add_argument("--table", default="interop_items")
    ap.add_argument("--label", required=True)
    args = ap.parse_args()
    print(f"python SDK mcp {mcp.__version__ if hasattr(mcp, '__version__') else '?'}: owners, completions, logging, {args.url}")
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        leaves = list(flatten(e))
        checks = [x for x in leaves if isinstance(x, CheckFailed)]
        for x in checks or leaves:
            what = str(x) if isinstance(x, CheckFailed) else f"{type(x).__name__}: {x}"
            print(f"FAIL python-owners: {what}", file=sys.stderr)
        return 1
    print("PASS python-owners")
    return 0


if __name__ == "__main__":
    sys.exit(main())
