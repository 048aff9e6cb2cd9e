#!/usr/bin/env node
// Interop check: ColdQuery driven by the official MCP TypeScript SDK (npm @modelcontextprotocol/sdk):
// `Client` + `StreamableHTTPClientTransport`, as an application would use them.
//
// The SDK negotiates by the initialize handshake (its newest version is 2025-11-25), so the server
// must answer 2025-11-25 and hand out an Mcp-Session-Id. Then: list tools (the tools of
// expected-surface.json, each with an outputSchema), read `SELECT 41 + 1 AS answer` (rows ==
// [[42]]), a write without autocommit is refused (policy_denied), pg_tx begin -> pg_query write
// (INSERT) with the handle -> not visible outside the transaction -> pg_tx commit -> a fresh read
// sees the row; the resources and prompts expected-surface.json lists as active; and a handle left
// open is rolled back when the client terminates its session (DELETE).
//
// Usage: node ts_client.mjs --url http://127.0.0.1:19002/mcp --label <unique> [--table interop_items]
// The SDK is imported from $INTEROP_NODE_MODULES (scripts/interop sets it to its cache) or, when that
// is unset, from the usual node_modules resolution. Exit 0 when every check passed, 1 otherwise.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const EXPECTED_PROTOCOL = '2025-11-25';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    label: { type: 'string' },
    table: { type: 'string', default: 'interop_items' },
    surface: { type: 'string', default: join(HERE, 'expected-surface.json') },
  },
});
if (!args.url || !args.label) {
  console.error('usage: ts_client.mjs --url <mcp url> --label <unique> [--table interop_items]');
  process.exit(2);
}

// Load the SDK through its package.json "exports" ("./*" -> import target), from INTEROP_NODE_MODULES.
const nodeModules = process.env.INTEROP_NODE_MODULES;
let sdkVersion = '?';
async function sdk(sub) {
  if (!nodeModules) return import(`@modelcontextprotocol/sdk/${sub}`);
  const dir = join(nodeModules, '@modelcontextprotocol', 'sdk');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  sdkVersion = pkg.version;
  const target = pkg.exports['./*'].import.replace('*', sub);
  return import(pathToFileURL(join(dir, target)).href);
}
const { Client } = await sdk('client/index.js');
const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');

class CheckFailed extends Error {}
function check(cond, what, detail) {
  if (!cond) throw new CheckFailed(detail === undefined ? what : `${what}: ${short(detail)}`);
  console.log(`  ok  ${what}`);
}
const note = (m) => console.log(`  note ${m}`);
function short(v, n = 600) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s && s.length > n ? `${s.slice(0, n)}…` : s;
}
const deepEqual = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const textOf = (r) => (r.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('');

function okResult(r, what) {
  check(r.isError !== true, `${what}: not isError`, r.isError ? textOf(r) : undefined);
  const sc = r.structuredContent;
  check(sc && typeof sc === 'object' && !Array.isArray(sc), `${what}: structuredContent is an object`, sc);
  let asText;
  try {
    asText = JSON.parse(textOf(r));
  } catch {
    asText = undefined;
  }
  // Same data twice (contract §3); compared structurally, key order aside.
  check(asText !== undefined && deepEqual(sortKeys(asText), sortKeys(sc)), `${what}: the text block carries the same JSON as structuredContent`, textOf(r));
  return sc;
}
function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

async function pages(fn, field) {
  const items = [];
  let cursor;
  for (let i = 0; i < 50; i++) {
    const page = await fn(cursor ? { cursor } : undefined);
    items.push(...page[field]);
    cursor = page.nextCursor;
    if (!cursor) return items;
  }
  throw new CheckFailed(`${field}: pagination did not end after 50 pages`);
}

async function health() {
  const res = await fetch(args.url.replace(/\/mcp$/, '/health'));
  return res.json();
}

async function main() {
  const surface = JSON.parse(readFileSync(args.surface, 'utf8'));
  const { table, label } = args;
  const transport = new StreamableHTTPClientTransport(new URL(args.url));
  const client = new Client({ name: 'coldquery-interop-ts', version: '1.0.0' });
  await client.connect(transport);
  console.log(`TypeScript SDK @modelcontextprotocol/sdk ${sdkVersion}, node ${process.version}, ${args.url}`);
  try {
    console.log(`  negotiated protocol version: ${transport.protocolVersion}`);
    check(transport.protocolVersion === EXPECTED_PROTOCOL, `negotiated ${EXPECTED_PROTOCOL}`, transport.protocolVersion);
    check(typeof transport.sessionId === 'string' && transport.sessionId.length > 0, 'the server handed out an Mcp-Session-Id', transport.sessionId);
    check(client.getServerVersion()?.name === 'coldquery', 'serverInfo.name == coldquery', client.getServerVersion());

    // tools/list
    const tools = Object.fromEntries((await pages((p) => client.listTools(p), 'tools')).map((t) => [t.name, t]));
    console.log(`  tools: ${JSON.stringify(Object.keys(tools).sort())}`);
    for (const name of surface.tools) {
      const t = tools[name];
      check(t !== undefined, `tools/list has ${name}`, Object.keys(tools));
      check(typeof t.description === 'string' && t.description.trim() !== '', `${name} has a description`);
      check(t.inputSchema?.type === 'object' && !('oneOf' in t.inputSchema), `${name} inputSchema is a flat object schema`, t.inputSchema);
      check(t.outputSchema?.type === 'object', `${name} has an object outputSchema`, t.outputSchema);
    }
    for (const name of surface.tools_pending || []) {
      if (tools[name]) note(`pending tool ${name} is served now: move it to 'tools' in expected-surface.json`);
    }

    // the tool list's size, and a read through a tool annotated readOnlyHint: true
    if (surface.max_tools_list_bytes) {
      const size = Buffer.byteLength(JSON.stringify({ tools: Object.values(tools) }));
      console.log(`  tools/list: ${size} bytes for ${Object.keys(tools).length} tools`);
      check(size <= surface.max_tools_list_bytes, `tools/list is at most ${surface.max_tools_list_bytes} bytes`, size);
    }
    const ro = surface.read_only_read;
    if (ro) {
      const ann = tools[ro.tool]?.annotations;
      check(ann?.readOnlyHint === true && ann?.destructiveHint === false, `${ro.tool} is annotated readOnlyHint: true, destructiveHint: false`, ann);
      const got = okResult(await client.callTool({ name: ro.tool, arguments: ro.arguments }), `${ro.tool} ${ro.arguments.action}`);
      check(deepEqual(got.rows, ro.rows), `${ro.tool} read -> rows == ${JSON.stringify(ro.rows)}`, got);
    }

    // read (the SDK validates structuredContent against the listed outputSchema)
    let sc = okResult(await client.callTool({ name: 'pg_query', arguments: { action: 'read', sql: 'SELECT 41 + 1 AS answer' } }), 'pg_query read');
    check(deepEqual(sc.rows, [[42]]), 'read SELECT 41 + 1 AS answer -> rows == [[42]]', sc);
    check(deepEqual(sc.columns, [{ name: 'answer', type: 'int4' }]), 'read columns == [answer int4]', sc.columns);

    // default-deny write: a tool error, not a protocol error
    const insert = `INSERT INTO ${table} (client, note) VALUES ($1, $2) RETURNING id`;
    let r = await client.callTool({ name: 'pg_query', arguments: { action: 'write', sql: insert, params: [label, 'denied'] } });
    check(r.isError === true, 'write without autocommit/session_id is refused (isError)', textOf(r));
    check(textOf(r).startsWith('policy_denied'), "the refusal's text starts with policy_denied", textOf(r));
    check(r.structuredContent?.error?.category === 'policy_denied', 'structuredContent.error.category == policy_denied', r.structuredContent);

    // begin -> write -> (invisible outside) -> commit -> visible
    sc = okResult(await client.callTool({ name: 'pg_tx', arguments: { action: 'begin' } }), 'pg_tx begin');
    const handle = sc.session_id;
    check(typeof handle === 'string' && handle.length >= 16, 'pg_tx begin returns structuredContent.session_id', sc);

    const noteText = 'written by ts-sdk through a pg_tx handle';
    sc = okResult(
      await client.callTool({ name: 'pg_query', arguments: { action: 'write', sql: insert, params: [label, noteText], session_id: handle } }),
      'pg_query write with session_id',
    );
    check(sc.rows_affected === 1, 'the write affected 1 row', sc);
    check(Array.isArray(sc.rows) && sc.rows.length === 1, 'RETURNING id gave one row', sc.rows);
    check(sc.session?.id === handle, 'the write result names the session', sc.session);

    const countSql = `SELECT count(*) AS n FROM ${table} WHERE client = $1`;
    sc = okResult(await client.callTool({ name: 'pg_query', arguments: { action: 'read', sql: countSql, params: [label] } }), 'read outside the transaction');
    check(deepEqual(sc.rows, [[0]]), 'the uncommitted row is not visible outside the transaction', sc.rows);

    okResult(await client.callTool({ name: 'pg_tx', arguments: { action: 'commit', session_id: handle } }), 'pg_tx commit');

    sc = okResult(
      await client.callTool({ name: 'pg_query', arguments: { action: 'read', sql: `SELECT client, note FROM ${table} WHERE client = $1`, params: [label] } }),
      'read after commit',
    );
    check(deepEqual(sc.rows, [[label, noteText]]), 'after commit the row is there', sc.rows);

    r = await client.callTool({ name: 'pg_tx', arguments: { action: 'commit', session_id: handle } });
    check(r.isError === true && textOf(r).startsWith('session_not_found'), 'the handle is gone after commit (session_not_found)', textOf(r));

    await checkResourcesAndPrompts(client, surface);

    // A handle left open when the client ends its MCP session must be rolled back (contract §4).
    const openBefore = (await health()).sessions.open;
    sc = okResult(await client.callTool({ name: 'pg_tx', arguments: { action: 'begin' } }), 'pg_tx begin (to abandon)');
    okResult(
      await client.callTool({
        name: 'pg_query',
        arguments: { action: 'write', sql: `INSERT INTO ${table} (client, note) VALUES ($1, 'never committed')`, params: [`${label}-abandoned`], session_id: sc.session_id },
      }),
      'write in the abandoned transaction',
    );
    check((await health()).sessions.open === openBefore + 1, '/health counts the open handle');
    await transport.terminateSession(); // DELETE with Mcp-Session-Id; throws on a non-2xx (but 405)
    check(transport.sessionId === undefined, 'terminateSession() ended the MCP session', transport.sessionId);
    const deadline = Date.now() + 5000;
    let open = (await health()).sessions.open;
    while (open !== openBefore && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 100));
      open = (await health()).sessions.open;
    }
    check(open === openBefore, 'after DELETE the abandoned handle is closed (/health sessions.open back)', { open, openBefore });
  } finally {
    await client.close();
  }
}

async function checkResourcesAndPrompts(client, surface) {
  const wantRes = surface.resources, wantTpl = surface.resource_templates, wantPr = surface.prompts;
  const attempt = async (what, want, fn) => {
    try {
      return await fn();
    } catch (e) {
      if (want.length) throw new CheckFailed(`${what} failed: ${e.message}`);
      note(`${what} is not offered yet (${e.message}); nothing in expected-surface.json requires it`);
      return [];
    }
  };
  const readJson = async (uri) => {
    const rr = await client.readResource({ uri });
    const texts = rr.contents.filter((c) => typeof c.text === 'string').map((c) => c.text);
    check(texts.length > 0, `resources/read ${uri} returns text contents`);
    let parsed = true;
    try {
      JSON.parse(texts[0]);
    } catch {
      parsed = false;
    }
    check(parsed, `resources/read ${uri} is JSON`, texts[0]);
  };
  if (wantRes.length || (surface.resources_pending || []).length) {
    const served = (await attempt('resources/list', wantRes, () => pages((p) => client.listResources(p), 'resources'))).map((r) => r.uri);
    for (const uri of wantRes) {
      check(served.includes(uri), `resources/list has ${uri}`, served);
      await readJson(uri);
    }
    for (const uri of surface.resources_pending || []) if (served.includes(uri)) note(`pending resource ${uri} is served now: move it to 'resources'`);
  }
  if (wantTpl.length || (surface.resource_templates_pending || []).length) {
    const served = (await attempt('resources/templates/list', wantTpl, () => pages((p) => client.listResourceTemplates(p), 'resourceTemplates'))).map((t) => t.uriTemplate);
    for (const t of wantTpl) {
      check(served.includes(t.uriTemplate), `resources/templates/list has ${t.uriTemplate}`, served);
      await readJson(t.read);
    }
    for (const t of surface.resource_templates_pending || []) if (served.includes(t.uriTemplate)) note(`pending template ${t.uriTemplate} is served now: move it to 'resource_templates'`);
  }
  if (wantPr.length || (surface.prompts_pending || []).length) {
    const served = Object.fromEntries((await attempt('prompts/list', wantPr, () => pages((p) => client.listPrompts(p), 'prompts'))).map((p) => [p.name, p]));
    for (const p of wantPr) {
      check(served[p.name] !== undefined, `prompts/list has ${p.name}`, Object.keys(served));
      check((served[p.name].description || '').trim() !== '', `prompt ${p.name} has a description`);
      const got = await client.getPrompt({ name: p.name, arguments: p.arguments || {} });
      const texts = got.messages.map((m) => m.content?.text || '');
      check(texts.some((t) => t), `prompts/get ${p.name} returns text messages`);
      check(texts.some((t) => t.includes('pg_')), `prompts/get ${p.name} refers to a pg_ tool`, texts);
    }
    for (const p of surface.prompts_pending || []) if (served[p.name]) note(`pending prompt ${p.name} is served now: move it to 'prompts'`);
  }
}

try {
  await main();
  console.log('PASS ts-sdk');
  process.exit(0);
} catch (e) {
  console.error(`FAIL ts-sdk: ${e instanceof CheckFailed ? '' : `${e?.name}: `}${e?.message ?? e}`);
  process.exit(1);
}
