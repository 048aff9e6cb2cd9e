#!/usr/bin/env python3
"""The soak's hand-made load (scripts/soak runs it beside mcp-load): what a load generator
does not do. Standard library only; MCP 2025-11-25 over streamable HTTP, loopback only.

Until --deadline (a UNIX time), in rounds:
  - cancellations: a slow read whose HTTP request is dropped after 0.3 s, and one cancelled
    with notifications/cancelled;
  - a pg_tx session begun, written to and left open, to expire by COLDQUERY_SESSION_TTL;
  - refused bypass attempts: each must come back as an error (policy_denied, or the READ ONLY
    transaction's database_error); one that succeeds is an unexpected error;
  - every --idle-every seconds (first after 60 s): --idle MCP sessions opened (initialize +
    initialized), held for a moment, then dropped: most with DELETE, a tenth abandoned to the
    server's keep-alive.
Prints one JSON line at the end: counts per kind, the unexpected errors and a few samples.
Exits 1 on any unexpected error.
"""

import argparse
import http.client
import json
import socket
import sys
import threading
import time

PROTOCOL = "2025-11-25"

# Each must be refused. Written against the bench tables (items, wide, soak_notes).
BYPASS = [
    "SELECT 1; DELETE FROM items",
    "WITH d AS (DELETE FROM items WHERE id = 1 RETURNING *) SELECT * FROM d",
    "SET transaction_read_only = off",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "DO $$ BEGIN DELETE FROM items; END $$",
    "COPY items TO '/tmp/coldquery-soak-items.csv'",
    "SELECT pg_terminate_backend(pg_backend_pid())",
    "SELECT lo_import('/etc/passwd')",
    "UPDATE items SET qty = 0 WHERE id = 1",
    "SELECT * FROM items FOR UPDATE",
    "CREATE TEMP TABLE t AS SELECT 1",
    "SELECT nextval('items_id_seq')",
]


class Mcp:
    """One MCP session (or a stateless-free session-less client before initialize)."""

    def __init__(self, host, port, timeout=30.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.sid = None
        self.next_id = 1

    def _post(self, body, timeout=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": PROTOCOL,
        }
        if self.sid:
            headers["Mcp-Session-Id"] = self.sid
        try:
            conn.request("POST", "/mcp", json.dumps(body), headers)
            r = conn.getresponse()
            raw = r.read().decode("utf-8", "replace")
            sid = r.getheader("Mcp-Session-Id")
            return r.status, sid, raw
        finally:
            conn.close()

    @staticmethod
    def _message(raw):
        """The JSON-RPC message in a JSON or SSE body (the last data: event with an id)."""
        raw = raw.strip()
        if raw.startswith("{"):
            return json.loads(raw)
        msg = None
        for line in raw.splitlines():
            if line.startswith("data:"):
                data = line[5:].strip()
                if data:
                    m = json.loads(data)
                    if "id" in m:
                        msg = m
        return msg

    def request(self, method, params, timeout=None):
        rid = self.next_id
        self.next_id += 1
        status, sid, raw = self._post({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}, timeout)
        if sid:
            self.sid = sid
        if status != 200:
            raise RuntimeError(f"{method}: HTTP {status}: {raw[:200]}")
        m = self._message(raw)
        if m is None or "error" in m:
            raise RuntimeError(f"{method}: {m}")
        return m["result"]

    def notify(self, method, params=None):
        status, _, raw = self._post({"jsonrpc": "2.0", "method": method, "params": params or {}})
        if status not in (200, 202):
            raise RuntimeError(f"{method}: HTTP {status}: {raw[:200]}")

    def initialize(self):
        self.request(
            "initialize",
            {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "coldquery-soak", "version": "1"}},
        )
        self.notify("notifications/initialized")

    def call(self, tool, args, timeout=None):
        """(is_error, text, structured) of a tools/call."""
        r = self.request("tools/call", {"name": tool, "arguments": args}, timeout)
        text = next((c.get("text", "") for c in r.get("content", []) if c.get("type") == "text"), "")
        return bool(r.get("isError")), text, r.get("structuredContent")

    def delete(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("DELETE", "/mcp", headers={"Mcp-Session-Id": self.sid, "MCP-Protocol-Version": PROTOCOL})
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()


class Tally:
    def __init__(self):
        self.counts = {}
        self.unexpected = 0
        self.samples = []
        self.lock = threading.Lock()

    def add(self, kind, n=1):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def bad(self, what):
        with self.lock:
            self.unexpected += 1
            if len(self.samples) < 10:
                self.samples.append(what[:300])


def cancellations(host, port, t):
    c = Mcp(host, port)
    c.initialize()
    # 1. The HTTP request dropped mid-statement: the server must cancel it in PostgreSQL.
    try:
        c.call("pg_query", {"action": "read", "sql": "SELECT pg_sleep(3)"}, timeout=0.3)
        t.bad("a dropped request's pg_sleep(3) returned within 0.3 s")
    except (socket.timeout, TimeoutError):
        t.add("cancel_dropped_request")
    # 2. notifications/cancelled for a request in flight.
    rid = c.next_id
    box = {}

    def run():
        try:
            box["r"] = c.call("pg_query", {"action": "read", "sql": "SELECT pg_sleep(3)"}, timeout=10)
        except Exception as e:  # noqa: BLE001 - any outcome but success is fine here
            box["e"] = e

    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.3)
    c.notify("notifications/cancelled", {"requestId": rid, "reason": "soak"})
    th.join(12)
    if "r" in box and not box["r"][0]:
        t.bad("a cancelled pg_sleep(3) completed successfully")
    else:
        t.add("cancel_notification")
    c.delete()


def expiring_session(host, port, t, round_no):
    c = Mcp(host, port)
    c.initialize()
    err, text, s = c.call("pg_tx", {"action": "begin"})
    if err:
        # max_sessions reached is a deliberate limit, not a fault, while earlier ones expire.
        if text.startswith("limit_exceeded"):
            t.add("session_limit_refusal")
        else:
            t.bad(f"pg_tx begin: {text}")
        c.delete()
        return
    sid = s["session_id"]
    err, text, _ = c.call(
        "pg_query",
        {"action": "write", "session_id": sid, "sql": "INSERT INTO soak_notes (note) VALUES ($1)", "params": [f"expire-{round_no}"]},
    )
    if err:
        t.bad(f"write in session: {text}")
    t.add("sessions_left_to_expire")
    # Abandon the MCP session too (no DELETE): it ends by keep-alive, its pg_tx by the TTL.


def bypass(host, port, t):
    c = Mcp(host, port)
    c.initialize()
    for sql in BYPASS:
        err, text, _ = c.call("pg_query", {"action": "read", "sql": sql})
        if err and (text.startswith("policy_denied") or text.startswith("database_error")):
            t.add("bypass_refused")
        else:
            t.bad(f"bypass attempt not refused: {sql!r} -> {text[:120]}")
    c.delete()


def idle_burst(host, port, n, t):
    sessions = []
    for _ in range(n):
        c = Mcp(host, port)
        try:
            c.initialize()
            sessions.append(c)
        except Exception as e:  # noqa: BLE001
            t.bad(f"idle session initialize: {e}")
    t.add("idle_sessions_opened", len(sessions))
    time.sleep(2)
    for i, c in enumerate(sessions):
        if i % 10 == 9:
            t.add("idle_sessions_abandoned")
            continue
        st = c.delete()
        if st in (200, 202, 204):
            t.add("idle_sessions_deleted")
        else:
            t.bad(f"DELETE of an idle session: HTTP {st}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--deadline", type=float, required=True)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--idle-every", type=float, default=300)
    ap.add_argument("--round-every", type=float, default=10)
    a = ap.parse_args()
    host = "127.0.0.1"
    t = Tally()
    start = time.time()
    next_idle = start + min(60, max(5, (a.deadline - start) / 3))
    round_no = 0
    while time.time() < a.deadline - 5:
        round_no += 1
        began = time.time()
        for step in (cancellations, bypass):
            try:
                step(host, port=a.port, t=t)
            except Exception as e:  # noqa: BLE001
                t.bad(f"{step.__name__}: {e}")
        if round_no % 3 == 1:
            try:
                expiring_session(host, a.port, t, round_no)
            except Exception as e:  # noqa: BLE001
                t.bad(f"expiring_session: {e}")
        if time.time() >= next_idle and time.time() < a.deadline - 20:
            try:
                idle_burst(host, a.port, a.idle, t)
            except Exception as e:  # noqa: BLE001
                t.bad(f"idle_burst: {e}")
            next_idle += a.idle_every
        time.sleep(max(0.0, a.round_every - (time.time() - began)))
    print(json.dumps({"extras": t.counts, "unexpected_errors": t.unexpected, "samples": t.samples}))
    return 1 if t.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
