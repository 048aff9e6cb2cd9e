#!/usr/bin/env python3
"""Interop check: ColdQuery driven by the official MCP Python SDK (PyPI package `mcp`).

Two modes, one scenario each (scripts/interop runs both):

  --mode default  `mcp.Client(transport)` with the SDK's default `mode="auto"`: it probes
                  `server/discover` and adopts 2026-07-28 (stateless, no Mcp-Session-Id) when the
                  server offers it. We require exactly that: a silent fall-back to the initialize
                  handshake would hide a broken 2026-07-28 path, so it fails the check.
  --mode legacy   the classic low-level path: `streamable_http_client` + `ClientSession.initialize()`
                  (2025-11-25, the server hands out an Mcp-Session-Id). Also checks that a pg_tx
                  handle left open is rolled back when the SDK ends its session (HTTP DELETE).

Both modes then: list tools (the tools of expected-surface.json, each with an outputSchema), read
`SELECT 41 + 1 AS answer` (rows == [[42]]), a write without autocommit is refused
(policy_denied), pg_tx begin -> pg_query write (INSERT) with the handle -> not visible outside the
transaction -> pg_tx commit -> a fresh read sees the row; a DELETE without WHERE needs its
confirm token (bound to that statement, usable once); then the resources and prompts that
expected-surface.json lists as active. Legacy mode also checks elicitation (a client that
accepts, one that declines); default mode the same for stateless clients, which are asked
through input_required (multi round-trip).

Exit status 0 when every check passed; 1 with a message naming the failed check otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx2  # the HTTP client the SDK itself uses (a dependency of `mcp`)
import mcp
from importlib.metadata import version as dist_version
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

HERE = Path(__file__).resolve().parent
EXPECTED_PROTOCOL = {"default": "2026-07-28", "legacy": "2025-11-25"}


class CheckFailed(Exception):
    pass


def check(cond: bool, what: str, detail: Any = None) -> None:
    if not cond:
        msg = what if detail is None else f"{what}: {detail}"
        raise CheckFailed(msg)
    print(f"  ok  {what}")


def note(msg: str) -> None:
    print(f"  note {msg}")


def short(v: Any, n: int = 600) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= n else s[:n] + "…"


class Wire:
    """Records what crossed the wire (request headers and methods, response headers) by httpx2
    event hooks on the http client handed to the SDK's transport."""

    def __init__(self) -> None:
        self.session_ids: set[str] = set()
        self.methods: list[str] = []
        self.deletes: list[int] = []

    async def on_request(self, request: httpx2.Request) -> None:
        if request.method == "POST":
            try:
                body = json.loads(request.content or b"null")
            except (ValueError, httpx2.RequestNotRead):
                body = None
            for m in body if isinstance(body, list) else [body]:
                if isinstance(m, dict) and "method" in m:
                    self.methods.append(m["method"])

    async def on_response(self, response: httpx2.Response) -> None:
        sid = response.headers.get("mcp-session-id")
        if sid:
            self.session_ids.add(sid)
        if response.request.method == "DELETE":
            self.deletes.append(response.status_code)

    def client(self) -> httpx2.AsyncClient:
        c = create_mcp_http_client()
        c.event_hooks = {"request": [self.on_request], "response": [self.on_response]}
        return c


class Api:
    """The same calls over `mcp.Client` (default mode) or `mcp.ClientSession` (legacy mode)."""

    def __init__(self, obj: Client | ClientSession) -> None:
        self.obj = obj

    async def tool(self, name: str, args: dict[str, Any]):
        return await self.obj.call_tool(name, args)

    async def _pages(self, method: str, field: str) -> list[Any]:
        items: list[Any] = []
        cursor = None
        for _ in range(50):
            fn = getattr(self.obj, method)
            if isinstance(self.obj, Client):
                page = await fn(cursor=cursor)
            else:
                page = await fn(params=mcp.types.PaginatedRequestParams(cursor=cursor) if cursor else None)
            items.extend(getattr(page, field))
            cursor = page.next_cursor
            if not cursor:
                return items
        raise CheckFailed(f"{method}: pagination did not end after 50 pages")

    async def tools(self):
        return await self._pages("list_tools", "tools")

    async def resources(self):
        return await self._pages("list_resources", "resources")

    async def templates(self):
        return await self._pages("list_resource_templates", "resource_templates")

    async def prompts(self):
        return await self._pages("list_prompts", "prompts")

    async def read(self, uri: str):
        return await self.obj.read_resource(uri)

    async def prompt(self, name: str, args: dict[str, str]):
        return await self.obj.get_prompt(name, args)


def text_of(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", None) == "text")


def ok_result(result, what: str) -> dict[str, Any]:
    """A successful tool result: not isError, structuredContent present, and the text block is the
    same JSON (contract §3)."""
    check(not result.is_error, f"{what}: not isError", None if not result.is_error else text_of(result))
    sc = result.structured_content
    check(isinstance(sc, dict), f"{what}: structuredContent is an object", short(sc))
    try:
        as_text = json.loads(text_of(result))
    except ValueError:
        as_text = None
    check(as_text == sc, f"{what}: the text block carries the same JSON as structuredContent", short(text_of(result)))
    return sc


async def run_checks(api: Api, args: argparse.Namespace, surface: dict[str, Any]) -> None:
    table, label = args.table, args.label

    # --- tools/list ---------------------------------------------------------------------------
    tools = {t.name: t for t in await api.tools()}
    print(f"  tools: {sorted(tools)}")
    for name in surface["tools"]:
        t = tools.get(name)
        check(t is not None, f"tools/list has {name}", sorted(tools))
        check(bool((t.description or "").strip()), f"{name} has a description")
        ins = t.input_schema or {}
        check(ins.get("type") == "object" and "oneOf" not in ins, f"{name} inputSchema is a flat object schema", short(ins))
        outs = t.output_schema
        check(isinstance(outs, dict) and outs.get("type") == "object", f"{name} has an object outputSchema", short(outs))
    for name in surface.get("tools_pending", []):
        if name in tools:
            note(f"pending tool {name} is served now: move it to 'tools' in expected-surface.json")

    # --- the tool list's size, and a read through a tool annotated readOnlyHint: true -----------
    limit = surface.get("max_tools_list_bytes")
    if limit:
        listed = [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools.values()]
        size = len(json.dumps({"tools": listed}, separators=(",", ":"), ensure_ascii=False).encode())
        print(f"  tools/list: {size} bytes for {len(listed)} tools")
        check(size <= limit, f"tools/list is at most {limit} bytes", size)
    ro = surface.get("read_only_read")
    if ro:
        t = tools.get(ro["tool"])
        ann = t.annotations if t else None
        check(ann is not None and ann.read_only_hint is True and ann.destructive_hint is False,
              f"{ro['tool']} is annotated readOnlyHint: true, destructiveHint: false", short(ann))
        sc = ok_result(await api.tool(ro["tool"], ro["arguments"]), f"{ro['tool']} {ro['arguments']['action']}")
        check(sc.get("rows") == ro["rows"], f"{ro['tool']} read -> rows == {ro['rows']}", short(sc))

    # --- read ---------------------------------------------------------------------------------
    r = await api.tool("pg_query", {"action": "read", "sql": "SELECT 41 + 1 AS answer"})
    sc = ok_result(r, "pg_query read")
    check(sc.get("rows") == [[42]], "read SELECT 41 + 1 AS answer -> rows == [[42]]", short(sc))
    check(sc.get("columns") == [{"name": "answer", "type": "int4"}], "read columns == [answer int4]", short(sc.get("columns")))

    # --- default-deny write, as a tool error (not a protocol error) ----------------------------
    insert = f"INSERT INTO {table} (client, note) VALUES ($1, $2) RETURNING id"
    r = await api.tool("pg_query", {"action": "write", "sql": insert, "params": [label, "denied"]})
    check(r.is_error is True, "write without autocommit/session_id is refused (isError)", short(text_of(r)))
    check(text_of(r).startswith("policy_denied"), "the refusal's text starts with policy_denied", short(text_of(r)))
    err = (r.structured_content or {}).get("error") or {}
    check(err.get("category") == "policy_denied", "structuredContent.error.category == policy_denied", short(r.structured_content))

    # --- begin -> write -> (invisible outside) -> commit -> visible ----------------------------
    sc = ok_result(await api.tool("pg_tx", {"action": "begin"}), "pg_tx begin")
    handle = sc.get("session_id")
    check(isinstance(handle, str) and len(handle) >= 16, "pg_tx begin returns structuredContent.session_id", short(sc))

    note_text = f"written by {args.client_name} through a pg_tx handle"
    sc = ok_result(
        await api.tool("pg_query", {"action": "write", "sql": insert, "params": [label, note_text], "session_id": handle}),
        "pg_query write with session_id",
    )
    check(sc.get("rows_affected") == 1, "the write affected 1 row", short(sc))
    check(len(sc.get("rows") or []) == 1, "RETURNING id gave one row", short(sc.get("rows")))
    check((sc.get("session") or {}).get("id") == handle, "the write result names the session", short(sc.get("session")))

    count_sql = f"SELECT count(*) AS n FROM {table} WHERE client = $1"
    sc = ok_result(await api.tool("pg_query", {"action": "read", "sql": count_sql, "params": [label]}), "read outside the transaction")
    check(sc.get("rows") == [[0]], "the uncommitted row is not visible outside the transaction", short(sc.get("rows")))

    sc = ok_result(await api.tool("pg_tx", {"action": "commit", "session_id": handle}), "pg_tx commit")

    sc = ok_result(
        await api.tool("pg_query", {"action": "read", "sql": f"SELECT client, note FROM {table} WHERE client = $1", "params": [label]}),
        "read after commit",
    )
    check(sc.get("rows") == [[label, note_text]], "after commit the row is there", short(sc.get("rows")))

    r = await api.tool("pg_tx", {"action": "commit", "session_id": handle})
    check(r.is_error is True and text_of(r).startswith("session_not_found"), "the handle is gone after commit (session_not_found)", short(text_of(r)))

    # --- progress during a VACUUM FULL of a large table (contract §8) -------------------------------
    big = f"{table}_big_{args.mode}"
    ok_result(
        await api.tool("pg_schema", {"action": "create", "autocommit": True,
                                     "sql": f"CREATE TABLE {big} AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 1000000) g"}),
        "create a large table",
    )
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    r = await api.obj.call_tool("pg_admin", {"action": "vacuum", "table": big, "full": True, "autocommit": True},
                                progress_callback=on_progress)
    ok_result(r, "pg_admin vacuum full with a progress token")
    print(f"  progress: {len(seen)} notifications during VACUUM FULL; e.g. {seen[len(seen) // 2] if seen else None}")
    check(len(seen) >= 1, "notifications/progress arrived during the VACUUM", seen)
    check(all(b[0] > a[0] for a, b in zip(seen, seen[1:])), "progress grows with every notification", seen)
    check(any("VACUUM" in (m or "") for _, _, m in seen), "a notification carries pg_stat_progress figures (names VACUUM)", seen)
    await confirmed(api, "pg_schema", {"action": "drop", "sql": f"DROP TABLE {big}", "autocommit": True}, "drop the large table")

    # --- confirmation of destructive statements: the token path (contract §8) -------------------
    await check_confirm_token(api, f"{table}_confirm_{args.mode}")

    # --- resources and prompts (expected-surface.json) ------------------------------------------
    await check_resources_and_prompts(api, surface)


def error_of(result) -> dict[str, Any]:
    return (result.structured_content or {}).get("error") or {}


async def confirmed(api: Api, tool: str, args: dict[str, Any], what: str) -> dict[str, Any]:
    """A destructive call through the token path: refused with confirmation_required and a
    token, then repeated with confirm: token."""
    r = await api.tool(tool, args)
    err = error_of(r)
    check(r.is_error is True and err.get("category") == "confirmation_required",
          f"{what}: first refused with confirmation_required", short(text_of(r)))
    token = err.get("confirm")
    check(isinstance(token, str) and len(token) >= 32, f"{what}: structuredContent.error.confirm is a token", short(err))
    return ok_result(await api.tool(tool, {**args, "confirm": token}), f"{what}: repeated with confirm")


async def count_rows(api: Api, table: str) -> int:
    sc = ok_result(await api.tool("pg_query", {"action": "read", "sql": f"SELECT count(*) FROM {table}"}), f"count {table}")
    return sc["rows"][0][0]


async def check_confirm_token(api: Api, table: str) -> None:
    ok_result(await api.tool("pg_schema", {"action": "create", "autocommit": True, "sql": f"CREATE TABLE {table} (id int)"}),
              "create the confirmation table")
    ok_result(await api.tool("pg_query", {"action": "write", "autocommit": True,
                                          "sql": f"INSERT INTO {table} SELECT generate_series(1, 3)"}), "fill it")
    delete = {"action": "write", "sql": f"DELETE FROM {table}", "autocommit": True}
    r = await api.tool("pg_query", delete)
    err = error_of(r)
    check(r.is_error is True and text_of(r).startswith("confirmation_required"),
          "DELETE without WHERE is refused with confirmation_required", short(text_of(r)))
    check("3 rows" in (err.get("message") or ""), "the refusal says how many rows it would affect", short(err))
    token = err.get("confirm")
    check(isinstance(token, str), "the refusal carries structuredContent.error.confirm", short(err))
    check(token in (err.get("hint") or ""), "its hint names the token to repeat the call with", short(err))
    check(await count_rows(api, table) == 3, "nothing was deleted before the confirmation")
    r = await api.tool("pg_query", {**delete, "sql": f"DELETE FROM {table} AS x", "confirm": token})
    check(error_of(r).get("category") == "confirmation_required", "the token does not approve another statement", short(text_of(r)))
    check(await count_rows(api, table) == 3, "the other statement did not run")
    sc = ok_result(await api.tool("pg_query", {**delete, "confirm": token}), "the same call with confirm runs")
    check(sc.get("rows_affected") == 3, "it deleted the 3 rows", short(sc))
    ok_result(await api.tool("pg_query", {"action": "write", "autocommit": True, "sql": f"INSERT INTO {table} VALUES (9)"}), "one more row")
    r = await api.tool("pg_query", {**delete, "confirm": token})
    check(error_of(r).get("category") == "confirmation_required", "a used token is refused", short(text_of(r)))
    check(await count_rows(api, table) == 1, "the reused token ran nothing")
    ok_result(await api.tool("pg_query", {"action": "write", "autocommit": True, "sql": f"DELETE FROM {table} WHERE id = 9"}),
              "a DELETE with WHERE needs no confirmation")
    await confirmed(api, "pg_schema", {"action": "drop", "sql": f"DROP TABLE {table}", "autocommit": True}, "drop the confirmation table")


class Answer:
    """An elicitation callback that answers every question the same way and keeps the messages."""

    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.asked: list[str] = []

    async def __call__(self, context, params):
        self.asked.append(getattr(params, "message", ""))
        if self.accept:
            return mcp.types.ElicitResult(action="accept", content={"confirm": True})
        return mcp.types.ElicitResult(action="decline")


async def check_elicitation(url: str, table: str) -> None:
    """Legacy (2025-11-25) sessions whose client declares elicitation are asked; the answer decides."""
    for accept in (False, True):
        answer = Answer(accept)
        async with AsyncExitStack() as stack:
            hc = await stack.enter_async_context(create_mcp_http_client())
            read, write = await stack.enter_async_context(streamable_http_client(url, http_client=hc))
            session = await stack.enter_async_context(ClientSession(read, write, elicitation_callback=answer))
            await session.initialize()
            api = Api(session)
            if not accept:
                ok_result(await api.tool("pg_schema", {"action": "create", "autocommit": True, "sql": f"CREATE TABLE {table} (id int)"}),
                          "create the elicitation table")
                ok_result(await api.tool("pg_query", {"action": "write", "autocommit": True,
                                                      "sql": f"INSERT INTO {table} SELECT generate_series(1, 4)"}), "fill it")
            r = await api.tool("pg_query", {"action": "write", "sql": f"DELETE FROM {table}", "autocommit": True})
            check(len(answer.asked) == 1, f"elicitation ({'accept' if accept else 'decline'}): the client was asked once", answer.asked)
            check(f"DELETE FROM {table}" in answer.asked[0] and "4 rows" in answer.asked[0],
                  "the question shows the statement and the rows it would affect", short(answer.asked[0]))
            if accept:
                sc = ok_result(r, "accepted: the DELETE ran")
                check(sc.get("rows_affected") == 4, "accepted: it deleted the 4 rows", short(sc))
                ok_result(await api.tool("pg_schema", {"action": "drop", "sql": f"DROP TABLE {table}", "autocommit": True}),
                          "accepted: DROP TABLE runs after the client is asked")
                check(len(answer.asked) == 2, "the DROP TABLE was asked about too", answer.asked)
            else:
                check(r.is_error is True and error_of(r).get("category") == "confirmation_declined",
                      "declined: the call is refused with confirmation_declined", short(text_of(r)))
                check(await count_rows(api, table) == 4, "declined: nothing was deleted")


async def check_stateless_elicitation(url: str, table: str) -> None:
    """A 2026-07-28 client with an elicitation callback: stateless calls cannot carry a
    server-to-client request, so the server answers input_required (multi round-trip) and the
    SDK repeats the call with the callback's answer."""
    for accept in (False, True):
        answer = Answer(accept)
        async with create_mcp_http_client() as hc:
            async with Client(streamable_http_client(url, http_client=hc), elicitation_callback=answer) as client:
                api = Api(client)
                if not accept:
                    ok_result(await api.tool("pg_schema", {"action": "create", "autocommit": True, "sql": f"CREATE TABLE {table} (id int)"}),
                              "create a table for the stateless elicitation check")
                r = await api.tool("pg_schema", {"action": "drop", "sql": f"DROP TABLE {table}", "autocommit": True})
                check(len(answer.asked) == 1, f"stateless ({'accept' if accept else 'decline'}): asked once through input_required", answer.asked)
                check(f"DROP TABLE {table}" in answer.asked[0], "the question shows the statement", short(answer.asked[0]))
                if accept:
                    ok_result(r, "stateless accepted: DROP TABLE ran")
                    r = await api.tool("pg_query", {"action": "read", "sql": "SELECT to_regclass($1)::text", "params": [table]})
                    check(ok_result(r, "look the table up").get("rows") == [[None]], "the table is gone")
                else:
                    check(r.is_error is True and error_of(r).get("category") == "confirmation_declined",
                          "stateless declined: confirmation_declined", short(text_of(r)))


async def check_resources_and_prompts(api: Api, surface: dict[str, Any]) -> None:
    want_res, want_tpl, want_pr = surface["resources"], surface["resource_templates"], surface["prompts"]
    if want_res or surface.get("resources_pending"):
        try:
            served = {r.uri for r in await api.resources()}
        except mcp.MCPError as e:
            if want_res:
                raise CheckFailed(f"resources/list failed: MCP error {e.code}: {e}")
            note(f"resources/list is not offered yet (MCP error {e.code}: {e}); nothing in expected-surface.json requires it")
            served = set()
        for uri in want_res:
            check(uri in served, f"resources/list has {uri}", sorted(served))
            rr = await api.read(uri)
            texts = [c.text for c in rr.contents if getattr(c, "text", None) is not None]
            check(bool(texts), f"resources/read {uri} returns text contents")
            try:
                json.loads(texts[0])
                parsed = True
            except ValueError:
                parsed = False
            check(parsed, f"resources/read {uri} is JSON", short(texts[0]))
        for uri in surface.get("resources_pending", []):
            if uri in served:
                note(f"pending resource {uri} is served now: move it to 'resources' in expected-surface.json")
    if want_tpl or surface.get("resource_templates_pending"):
        try:
            served_t = {t.uri_template for t in await api.templates()}
        except mcp.MCPError as e:
            if want_tpl:
                raise CheckFailed(f"resources/templates/list failed: MCP error {e.code}: {e}")
            note(f"resources/templates/list is not offered yet (MCP error {e.code}: {e}); nothing in expected-surface.json requires it")
            served_t = set()
        for t in want_tpl:
            check(t["uriTemplate"] in served_t, f"resources/templates/list has {t['uriTemplate']}", sorted(served_t))
            rr = await api.read(t["read"])
            texts = [c.text for c in rr.contents if getattr(c, "text", None) is not None]
            check(bool(texts), f"resources/read {t['read']} returns text contents")
            try:
                json.loads(texts[0])
                parsed = True
            except ValueError:
                parsed = False
            check(parsed, f"resources/read {t['read']} is JSON", short(texts[0]))
        for t in surface.get("resource_templates_pending", []):
            if t["uriTemplate"] in served_t:
                note(f"pending template {t['uriTemplate']} is served now: move it to 'resource_templates'")
    if want_pr or surface.get("prompts_pending"):
        try:
            served_p = {p.name: p for p in await api.prompts()}
        except mcp.MCPError as e:
            if want_pr:
                raise CheckFailed(f"prompts/list failed: MCP error {e.code}: {e}")
            note(f"prompts/list is not offered yet (MCP error {e.code}: {e}); nothing in expected-surface.json requires it")
            served_p = {}
        for p in want_pr:
            check(p["name"] in served_p, f"prompts/list has {p['name']}", sorted(served_p))
            check(bool((served_p[p["name"]].description or "").strip()), f"prompt {p['name']} has a description")
            got = await api.prompt(p["name"], p.get("arguments") or {})
            texts = [getattr(m.content, "text", "") or "" for m in got.messages]
            check(bool(got.messages) and any(texts), f"prompts/get {p['name']} returns text messages")
            check(any("pg_" in t for t in texts), f"prompts/get {p['name']} refers to a pg_ tool", short(texts))
        for p in surface.get("prompts_pending", []):
            if p["name"] in served_p:
                note(f"pending prompt {p['name']} is served now: move it to 'prompts' in expected-surface.json")


def health(url: str) -> dict[str, Any]:
    base = url.rsplit("/mcp", 1)[0]
    with urllib.request.urlopen(f"{base}/health", timeout=5) as resp:
        return json.loads(resp.read())


async def main_default(args: argparse.Namespace, surface: dict[str, Any]) -> None:
    wire = Wire()
    async with wire.client() as hc:
        # The default Client, as `Client(url)` builds it, with our http client so we can watch headers.
        async with Client(streamable_http_client(args.url, http_client=hc)) as client:
            print(f"  negotiated protocol version: {client.protocol_version}")
            check(client.protocol_version == EXPECTED_PROTOCOL["default"], "default mode negotiated 2026-07-28", client.protocol_version)
            await run_checks(Api(client), args, surface)
    check("initialize" not in wire.methods, "no initialize was sent (stateless era)", wire.methods[:5])
    await check_stateless_elicitation(args.url, f"{args.table}_elicit_{args.mode}")
    check(not wire.session_ids, "the server handed out no Mcp-Session-Id", wire.session_ids)


async def main_legacy(args: argparse.Namespace, surface: dict[str, Any]) -> None:
    wire = Wire()
    abandoned = f"{args.label}-abandoned"
    async with AsyncExitStack() as stack:
        hc = await stack.enter_async_context(wire.client())
        read, write = await stack.enter_async_context(streamable_http_client(args.url, http_client=hc))
        session = await stack.enter_async_context(ClientSession(read, write))
        init = await session.initialize()
        print(f"  negotiated protocol version: {init.protocol_version}")
        check(init.protocol_version == EXPECTED_PROTOCOL["legacy"], "legacy mode negotiated 2025-11-25", init.protocol_version)
        check(init.server_info.name == "coldquery", "serverInfo.name == coldquery", init.server_info)
        check(len(wire.session_ids) == 1, "the server handed out one Mcp-Session-Id", wire.session_ids)
        api = Api(session)
        await run_checks(api, args, surface)

        # A handle left open when the SDK ends its MCP session must be rolled back (contract §4).
        open_before = health(args.url)["sessions"]["open"]
        sc = ok_result(await api.tool("pg_tx", {"action": "begin"}), "pg_tx begin (to abandon)")
        handle = sc["session_id"]
        ok_result(
            await api.tool(
                "pg_query",
                {"action": "write", "sql": f"INSERT INTO {args.table} (client, note) VALUES ($1, 'never committed')", "params": [abandoned], "session_id": handle},
            ),
            "write in the abandoned transaction",
        )
        check(health(args.url)["sessions"]["open"] == open_before + 1, "/health counts the open handle")
    await check_elicitation(args.url, f"{args.table}_elicit_{args.mode}")
    # Leaving the context: the SDK sends DELETE with the Mcp-Session-Id.
    check(len(wire.deletes) == 1, "the SDK sent DELETE for its session", wire.deletes)
    if wire.deletes[0] not in (200, 204):
        note(f"DELETE answered {wire.deletes[0]}; this SDK logs 'Session termination failed: {wire.deletes[0]}' for anything but 200/204")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and health(args.url)["sessions"]["open"] != open_before:
        await asyncio.sleep(0.1)
    check(health(args.url)["sessions"]["open"] == open_before, "after DELETE the abandoned handle is closed (/health sessions.open back)", health(args.url)["sessions"])


def flatten(e: BaseException):
    """The leaf exceptions of an exception group (anyio task groups wrap what they raise)."""
    if isinstance(e, BaseExceptionGroup):
        for sub in e.exceptions:
            yield from flatten(sub)
    else:
        yield e


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the server's MCP endpoint, e.g. http://127.0.0.1:19002/mcp")
    ap.add_argument("--mode", choices=["default", "legacy"], required=True)
    ap.add_argument("--table", default="interop_items", help="table (client text, note text) the runner created")
    ap.add_argument("--label", required=True, help="unique value written to the table's client column")
    ap.add_argument("--surface", default=str(HERE / "expected-surface.json"))
    args = ap.parse_args()
    args.client_name = f"python-sdk-{args.mode}"
    surface = json.loads(Path(args.surface).read_text())
    print(f"python SDK mcp {dist_version('mcp')}, mode {args.mode}, {args.url}")
    try:
        asyncio.run(main_default(args, surface) if args.mode == "default" else main_legacy(args, surface))
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # a failed check, or an SDK/transport error: report what it said
        leaves = list(flatten(e))
        checks = [x for x in leaves if isinstance(x, CheckFailed)]
        for x in checks or leaves:
            what = str(x) if isinstance(x, CheckFailed) else f"{type(x).__name__}: {x}"
            print(f"FAIL python-sdk-{args.mode}: {what}", file=sys.stderr)
        return 1
    print(f"PASS python-sdk-{args.mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
