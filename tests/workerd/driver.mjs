// The workerd suite's driver: starts the test Worker in `wrangler dev --local` on 127.0.0.1 with
// a fresh local D1, runs every scenario against it, checks what it observed, prints D1's cost of
// each operation, asserts the cost rules, stops the server by its process group, and exits
// non-zero on any mismatch. Run it through scripts/workerd-e2e.sh, which builds the Worker first.
//
// Rules cited as in shared/kv-semantics.md (K1-K35), shared/atomic-semantics.md (A1-A16) and
// docs/indexes.md (I1-I12). The Worker's API is in worker/src/ops.rs.

import { spawn } from "node:child_process";
import { deepStrictEqual } from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const STATE = path.join(HERE, ".state");
const WRANGLER = path.join(HERE, "node_modules", "wrangler", "bin", "wrangler.js");

// ---------------------------------------------------------------- the harness

let passed = 0;
let failed = 0;
let skipped = 0;
let current = "";

function check(name, actual, expected) {
  try {
    deepStrictEqual(actual, expected);
    passed++;
  } catch {
    failed++;
    console.log(`  FAIL ${current}: ${name}`);
    console.log(`    expected ${JSON.stringify(expected)}`);
    console.log(`    actual   ${JSON.stringify(actual)}`);
  }
}

const scenarios = [];
function scenario(name, run) {
  scenarios.push({ name, run });
}

// ---------------------------------------------------------------- talking to the Worker

let base = "";

async function post(route, body) {
  const res = await fetch(base + route, { method: "POST", body: JSON.stringify(body ?? {}) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${route}: HTTP ${res.status}: ${text.slice(0, 500)}`);
  }
  if (!res.ok) throw new Error(`${route}: HTTP ${res.status}: ${json.error ?? text}`);
  return json;
}

// Every operation result of the run, for the cost rules at the end.
const allOps = [];
// (binding, table) pairs whose table the Worker has created (K34): the first operation on each
// sends the schema statements with it, no other does.
const tablesCreated = new Set();
// How many schema statements d1ns sends with a table's first operation; learned from the very
// first operation of the run (on an empty database), then expected everywhere.
let schemaStatements = null;

// `node driver.mjs --session` runs the whole suite over D1 sessions (R1): every request's
// namespace is made on `env.d1(..).with_session("first-primary")` unless it names its own session.
const SESSION = process.argv.includes("--session") ? "first-primary" : null;
// `node driver.mjs --sharded` runs the scenarios that need no SQL of their own, no typed fixture
// and no commit across keys, with every namespace spread over DB, DB2 and DB3 (S4: every KV rule
// holds over shards).
const SHARDED = process.argv.includes("--sharded") ? ["DB", "DB2", "DB3"] : null;
// The scenarios of the --sharded pass. The others look into one database with SQL (where a
// sharded key's row may not be), commit several keys at once (refused across shards, S6), count
// a get_bulk as one call (one per shard, S4), or use the typed fixtures (on one database).
const SHARDABLE = [
  "JSON with integers above 2^53",
  "metadata of every JSON kind",
  "delete (K24)",
  "list over 2,500 keys",
  "multi-byte keys",
  "order and literal prefixes",
  "every error path of K2-K28",
  "edge cache: a cached entry is never served past its expiration",
  "shards:",
  "moving in from Workers KV",
  "resharding",
];

/**
 * What d1ns's schema registry knows a database by (K34): its binding, but one entry for all
 * sessions, which do not say which database they belong to (R3).
 */
function registryOf(opts) {
  const session = opts.session === undefined ? SESSION : opts.session;
  return session ? "session" : (opts.binding ?? "DB");
}

function tableOf(opts) {
  return `${registryOf(opts)}/${opts.table ?? `${opts.namespace ?? ""}_kv_entries`}`;
}

// The typed namespaces with indexes that operations name by `fixture` (worker/src/indexed.rs):
// `{name: {namespace, table, indexes}}`, asked of the Worker on first use.
let fixtures = null;

/**
 * What d1ns knows an operation's schema by, and how many index statements it adds to the table's
 * (I9): a namespace with indexes creates them with the table's statements the first time it
 * runs, even when its table exists; every other namespace goes by its table.
 */
function schemaOf(opts, one) {
  if (!one.fixture) return { key: tableOf(opts), indexes: 0 };
  const f = fixtures[one.fixture];
  const table = `${registryOf(opts)}/${f.table}`;
  return f.indexes > 0 ? { key: `${table}\0${f.namespace}`, indexes: f.indexes } : { key: table, indexes: 0 };
}

/**
 * Runs `list` in one request; returns the results (each `{ok, result|error, cost}`). `expired`:
 * how many expired entries, not yet purged, its look-ups may meet (each costs a row read, I5).
 */
async function ops(opts, list, { recovery = false, expired = 0 } = {}) {
  if (!fixtures && list.some((o) => o.fixture)) fixtures = await (await fetch(`${base}/fixtures`)).json();
  // Shards and moves run on the bindings: all sessions share one registry entry (R3), which
  // costs their first touch of each database a retry, and d1ns cannot tell their databases
  // apart (docs/scale-and-move.md).
  const onBindings = opts.shards !== undefined || opts.previous_shards !== undefined;
  let body = SESSION && opts.session === undefined && !onBindings ? { session: SESSION, ...opts } : opts;
  if (SHARDED && body.shards === undefined && body.binding === undefined && !list.some((o) => o.fixture)) body = { shards: SHARDED, ...body };
  // `session: null` asks for the binding even in a --session run.
  const { results, bookmark } = await post("/ops", { ...body, ops: list });
  // The session's bookmark after the operations (R2), `null` on the binding.
  results.bookmark = bookmark;
  results.forEach((r, i) => {
    const { key, indexes } = schemaOf(opts, list[i]);
    // Refused before reaching D1, or a namespace without auto-create: no schema involved.
    let schema = false;
    if (r.cost.calls > 0 && opts.auto_create !== false && !tablesCreated.has(key)) {
      schema = true;
      tablesCreated.add(key);
    }
    allOps.push({ op: list[i], opts: body, r, schema, indexes, expired, recovery: recovery && i === 0, scenario: current });
    r.schema = schema;
  });
  return results;
}

async function op(opts, one, flags) {
  return (await ops(opts, [one], flags))[0];
}

/** The result of an operation that must succeed. */
function ok(r) {
  if (!r.ok) throw new Error(`operation failed: ${r.error}`);
  return r.result;
}

async function sql(binding, statement, params = []) {
  return post("/sql", { binding, sql: statement, params });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const utf8 = (s) => [...Buffer.from(s, "utf8")];
const byteOrder = (keys) => [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

// ---------------------------------------------------------------- cost figures

const costRows = [];
/** Adds an operation's D1 cost to the printed table; `schemaLabel` says what its schema statements do. */
function cost(label, r, schemaLabel = " + creating the table") {
  const schema = r.schema && r.cost.statements > 1 ? schemaLabel : "";
  costRows.push({ label: label + schema, ...r.cost });
  return r;
}

// ---------------------------------------------------------------- scenarios

scenario("auto-create on an empty database, a fresh D1Namespace per request (K34)", async () => {
  const db2 = { binding: "DB2" };
  const first = cost("put, first operation on an empty database", await op(db2, { op: "put", key: "k", text: "v" }));
  check("first operation: one D1 call", first.cost.calls, 1);
  schemaStatements = first.cost.statements - 1;
  console.log(`  d1ns sends ${schemaStatements} schema statements with a table's first operation`);
  check("first operation: the schema statements travel with it", schemaStatements >= 2, true);
  const tables = await sql("DB2", "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name");
  const names = tables.rows.map((r) => r.name);
  check("table and expiration index created", ["_kv_entries", "_kv_entries$expiration"].every((n) => names.includes(n)), true);
  for (let i = 0; i < 3; i++) {
    const r = await op(db2, { op: "get", key: "k" });
    if (i === 0) cost("get, a new D1Namespace in a later request", r);
    check(`request ${i + 2}: value`, ok(r).value, "v");
    check(`request ${i + 2}: no schema statements`, r.cost.statements, 1);
  }
  const fresh = await ops({ ...db2, fresh_per_op: true }, [
    { op: "get", key: "k" },
    { op: "put", key: "k2", text: "w" },
    { op: "get", key: "k2" },
  ]);
  check("a new D1Namespace per operation: one statement each", fresh.map((r) => r.cost.statements), [1, 1, 1]);

  // The same table name in another binding is another table: DB's is created on its first use.
  if (SESSION) {
    // Sessions share one registry entry (R3), so DB's missing table is found by a failed call.
    const other = await op({}, { op: "get", key: "k" }, { recovery: true });
    check("over sessions, DB's missing _kv_entries costs one failed call, then schema + get", [ok(other).value, other.cost.calls, other.cost.statements], [null, 2, 2 + schemaStatements]);
  } else {
    const other = await op({}, { op: "get", key: "k" });
    check("DB has its own _kv_entries: created on first use, one call", [ok(other).value, other.cost.calls, other.cost.statements], [null, 1, 1 + schemaStatements]);
  }

  // Dropped behind d1ns's back: the operation creates the table again and retries once.
  await sql("DB2", 'DROP TABLE "_kv_entries"');
  tablesCreated.delete(tableOf(db2));
  const again = cost("put after DROP TABLE (fails, recreates, retries)", await op(db2, { op: "put", key: "k", text: "again" }, { recovery: true }));
  check("after DROP TABLE: put succeeds with one retry (2 calls, the put, then schema + put)", [again.ok, again.cost.calls, again.cost.statements], [true, 2, 2 + schemaStatements]);
  check("after DROP TABLE: the value is back", ok(await op(db2, { op: "get", key: "k" })).value, "again");

  // Without auto-create a missing table is D1's error, passed through.
  const manual = await op({ namespace: "manual", auto_create: false }, { op: "get", key: "k" });
  check("auto_create(false) on a missing table: D1's error", [manual.ok, /^database error: .*no such table: manual_kv_entries/.test(manual.error)], [false, true]);
});

scenario("another program's table (d1-namespace 1.1 and 1.0) is never changed: an error names it and what to do", async () => {
  // d1-namespace 1.1 keeps namespace "foreign" in foreign_kv_entries, d1ns's default table for it.
  await sql("DB2", "CREATE TABLE IF NOT EXISTS foreign_kv_entries (key TEXT NOT NULL COLLATE BINARY PRIMARY KEY, value BLOB NOT NULL, expiration INTEGER, metadata BLOB) WITHOUT ROWID");
  await sql("DB2", "CREATE INDEX IF NOT EXISTS foreign_kv_entries_expiration ON foreign_kv_entries (expiration)");
  await sql("DB2", "INSERT INTO foreign_kv_entries (key, value) VALUES ('k', 'v')");
  // d1-namespace 1.0: every namespace in one table `kv`.
  await sql("DB2", "CREATE TABLE IF NOT EXISTS kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, ttl_seconds INTEGER, created_at INTEGER NOT NULL, metadata BLOB, expires_at INTEGER GENERATED ALWAYS AS (created_at + ttl_seconds) VIRTUAL, PRIMARY KEY (namespace, key))");
  await sql("DB2", "INSERT INTO kv (namespace, key, value, created_at) VALUES ('', 'k', 'v', 1)");
  const schema = async () => (await sql("DB2", "SELECT name, sql FROM sqlite_master WHERE tbl_name IN ('foreign_kv_entries', 'kv') OR name LIKE 'foreign_kv_entries$%' OR name LIKE 'kv$%' ORDER BY name")).rows;
  const before = await schema();
  for (const [opts, table] of [[{ binding: "DB2", namespace: "foreign" }, "foreign_kv_entries"], [{ binding: "DB2", table: "kv" }, "kv"]]) {
    for (const auto_create of [true, false]) {
      const r = await ops({ ...opts, auto_create }, [{ op: "get", key: "k" }, { op: "put", key: "k2", text: "v" }, { op: "list" }]);
      check(`${table}, auto_create ${auto_create}: every operation fails, naming the table and what to do`, r.map((x) => !x.ok && x.error.includes(`table "${table}" is not a d1ns table`) && x.error.includes(".table(")), [true, true, true]);
    }
  }
  check("neither table, nor any index or trigger, was changed or added", await schema(), before);
  await sql("DB2", "INSERT INTO foreign_kv_entries (key, value) VALUES ('k3', 'v')");
  check("the other program goes on writing its table", (await sql("DB2", "SELECT count(*) AS n FROM foreign_kv_entries")).rows[0].n, 2);
});

scenario("value kinds: text, empty string, JSON, bytes (K6-K8)", async () => {
  const all256 = Array.from({ length: 256 }, (_, i) => i);
  const r = await ops({}, [
    { op: "put", key: "text", text: "hello, d1ns" },
    { op: "put", key: "text", text: "héllo, d1ns ✓" },
    { op: "put", key: "empty", text: "" },
    { op: "put", key: "json", json: '{"b":[true,null,1.5],"a":{"c":"é"}}' },
    { op: "put", key: "bytes", bytes: all256 },
    { op: "put", key: "utf8-bytes", bytes: utf8("bytes é") },
    { op: "put", key: "no-bytes", bytes: [] },
    { op: "put", key: "number", json: "42" },
    { op: "put", key: "bool", json: "true" },
    { op: "put", key: "string", json: '"as is"' },
    { op: "put", key: "array", json: "[1,\"two\"]" },
  ]);
  cost("put, new key, text", r[0]);
  cost("put, overwrite, text", r[1]);
  cost("put, JSON", r[3]);
  cost("put_bytes, 256 bytes", r[4]);
  check("every put succeeds", r.map((x) => x.ok), r.map(() => true));

  const g = await ops({}, [
    { op: "get", key: "text" },
    { op: "get", key: "text", as: "bytes" },
    { op: "get", key: "empty" },
    { op: "get", key: "json", as: "json" },
    { op: "get", key: "json" },
    { op: "get", key: "bytes", as: "bytes" },
    { op: "get", key: "bytes" },
    { op: "get", key: "utf8-bytes" },
    { op: "get", key: "no-bytes", as: "bytes" },
    { op: "get", key: "number" },
    { op: "get", key: "bool" },
    { op: "get", key: "string" },
    { op: "get", key: "array", as: "json" },
    { op: "get", key: "text", as: "json" },
    { op: "get", key: "missing" },
    { op: "get", key: "bytes", as: "bytes", with_metadata: true },
  ]);
  cost("get hit, text", g[0]);
  cost("get hit, bytes (256)", g[5]);
  cost("get hit, JSON", g[3]);
  cost("get miss", g[14]);
  cost("get_with_metadata hit", g[15]);
  check("text", ok(g[0]).value, "héllo, d1ns ✓");
  check("text read as bytes is its UTF-8 (K7)", ok(g[1]).value, utf8("héllo, d1ns ✓"));
  check("the empty string is a value (K6)", ok(g[2]).value, "");
  check("JSON read back", ok(g[3]).value, '{"a":{"c":"é"},"b":[true,null,1.5]}');
  check("JSON stored as JSON text (K8)", ok(g[4]).value, '{"a":{"c":"é"},"b":[true,null,1.5]}');
  check("all 256 byte values", ok(g[5]).value, all256);
  check("bytes that are not UTF-8 read as text with U+FFFD, as KV's TextDecoder (K7)", ok(g[6]).value, new TextDecoder().decode(new Uint8Array(all256)));
  check("UTF-8 bytes read as text (K7)", ok(g[7]).value, "bytes é");
  check("empty bytes", ok(g[8]).value, []);
  check("a number is stored as its text (K8)", ok(g[9]).value, "42");
  check("a bool is stored as its text (K8)", ok(g[10]).value, "true");
  check("a string is stored as is (K8)", ok(g[11]).value, "as is");
  check("an array is JSON (K8)", ok(g[12]).value, '[1,"two"]');
  check("json read of text that is not JSON names the key (K7)", g[13].error.startsWith('the value of key "text" is not JSON'), true);
  check("missing key is None (K17)", ok(g[14]).value, null);
  check("bytes with metadata (none)", ok(g[15]), { value: all256, metadata: null });

  const stored = await sql("DB", "SELECT key, typeof(value) AS type FROM _kv_entries WHERE namespace = '' AND key IN ('text', 'bytes', 'empty', 'no-bytes') ORDER BY key");
  check("text is stored as TEXT, bytes as BLOB", stored.rows, [
    { key: "bytes", type: "blob" },
    { key: "empty", type: "text" },
    { key: "no-bytes", type: "blob" },
    { key: "text", type: "text" },
  ]);
});

scenario("JSON with integers above 2^53 comes back exactly", async () => {
  const text = '{"big":9007199254740993,"max":18446744073709551615,"neg":-9007199254740993}';
  ok(await op({}, { op: "put", key: "big-ints", json: text, metadata: { note: "ids" } }));
  const r = await ops({}, [
    { op: "get", key: "big-ints", as: "json" },
    { op: "get", key: "big-ints" },
    { op: "get_bulk", keys: ["big-ints"], as: "json" },
    { op: "get", key: "big-ints", as: "json", with_metadata: true },
  ]);
  check("get json", ok(r[0]).value, text);
  check("get text", ok(r[1]).value, text);
  check("get_bulk json", ok(r[2]).values, { "big-ints": text });
  check("get json with metadata", ok(r[3]), { value: text, metadata: { note: "ids" } });
});

scenario("large values, stored in chunks beyond D1's 2,000,000-byte row (K6, K9)", async () => {
  const ns = { namespace: "large" };
  const r = await ops(ns, [
    { op: "put", key: "3mb", repeat: 3_000_000 },
    { op: "get", key: "3mb", summary: true },
    { op: "put", key: "25mib", repeat: 26_214_400 },
    { op: "get", key: "25mib", summary: true },
    { op: "put", key: "25mib", text: "small again" },
    { op: "get", key: "25mib" },
  ]);
  cost("put, 3,000,000-byte value (in chunks)", r[0]);
  cost("get hit, 3,000,000-byte value", r[1]);
  cost("put, 26,214,400-byte value (in chunks)", r[2]);
  cost("get hit, 26,214,400-byte value", r[3]);
  check("a 3,000,000-byte value round-trips", ok(r[1]), { length: 3_000_000, same_byte: 120 });
  check("a value in chunks is still one D1 call", [r[0].cost.calls, r[2].cost.calls], [1, 1]);
  check("K6: exactly 25 MiB round-trips", r[3].ok ? r[3].result : r[3].error, { length: 26_214_400, same_byte: 120 });
  check("overwrite of a value in chunks with a small one", ok(r[5]).value, "small again");
  const chunks = await sql("DB", 'SELECT count(*) AS n FROM "large_kv_entries$chunks"');
  // The 3 MB put: its entry, the removal of leftover chunks, then its chunks.
  check("overwriting removes the old chunks (only 3mb's remain)", chunks.rows[0].n, r[0].cost.statements - 2 - schemaStatements);
  const del = cost("delete hit, 3,000,000-byte value", await op(ns, { op: "delete", key: "3mb" }));
  check("delete of a value in chunks: one call, its chunks go too", [del.cost.calls, (await sql("DB", 'SELECT count(*) AS n FROM "large_kv_entries$chunks"')).rows[0].n], [1, 0]);
  const over = await op(ns, { op: "put", key: "huge", repeat: 26_214_401 });
  check("K6: over 25 MiB", over.error, "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400.");
});

scenario("large values: medium values in chunks, small ones beside them", async () => {
  const ns = { namespace: "medium" };
  const sizes = [1024, 1025, 16_384, 262_144, 1_048_576, 1_800_000];
  const r = await ops(ns, [
    { op: "put", key: "small", text: "s" },
    ...sizes.flatMap((n) => [
      { op: "put", key: `v${n}`, repeat: n },
      { op: "get", key: `v${n}`, summary: true },
    ]),
    { op: "get", key: "small" },
    { op: "get_bulk", keys: sizes.map((n) => `v${n}`).concat(["small"]) },
  ]);
  sizes.forEach((n, i) => {
    const [put, get] = [r[1 + 2 * i], r[2 + 2 * i]];
    if (n === 1024 || n === 16_384 || n === 1_048_576) {
      cost(`put, ${n.toLocaleString("en-US")}-byte value`, put);
      cost(`get hit, ${n.toLocaleString("en-US")}-byte value`, get);
    }
    check(`a ${n}-byte value round-trips`, ok(get), { length: n, same_byte: 120 });
    check(`a ${n}-byte value is ${n > 1024 ? "in chunks" : "in its row"}`, put.cost.statements, n > 1024 ? 3 : 1);
  });
  const small = r[1 + 2 * sizes.length];
  cost("get hit, small value among medium ones", small);
  check("a small value among medium ones reads 1 row", small.cost.rows_read, 1);
  const bulk = r[2 + 2 * sizes.length];
  cost("get_bulk of 6 medium values and a small one", bulk);
  check(
    "get_bulk reads every medium value whole",
    sizes.map((n) => ok(bulk).values[`v${n}`]?.length),
    sizes,
  );
  // Values up to 128 KiB come with the first statement; the longer ones in one more call.
  check("get_bulk of medium values: two calls", bulk.cost.calls, 2);
  const chunks = await sql("DB", 'SELECT count(*) AS n FROM "medium_kv_entries$chunks"');
  check("one chunk per medium value", chunks.rows[0].n, sizes.filter((n) => n > 1024).length);
});

scenario("metadata of every JSON kind (K10-K12)", async () => {
  const kinds = {
    object: { user: 1, tags: ["a"] },
    number: 123,
    float: 1.5,
    string: "web",
    bool: true,
    false: false,
    array: [1, "two", null],
    null: null,
  };
  const puts = await ops({ namespace: "meta" }, Object.entries(kinds).map(([key, metadata]) => ({ op: "put", key, text: `v-${key}`, metadata })));
  cost("put with metadata", puts[1]);
  check("every put succeeds", puts.map((x) => x.ok), puts.map(() => true));
  const gets = await ops({ namespace: "meta" }, Object.keys(kinds).map((key) => ({ op: "get", key, with_metadata: true })));
  for (const [i, [key, metadata]] of Object.entries(kinds).entries()) {
    check(`get_with_metadata: ${key}`, ok(gets[i]), { value: `v-${key}`, metadata });
  }
  const listed = ok(await op({ namespace: "meta" }, { op: "list" }));
  check("list shows each metadata", Object.fromEntries(listed.keys.map((k) => [k.name, k.metadata])), kinds);
  const bulk = ok(await op({ namespace: "meta" }, { op: "get_bulk", keys: ["number", "array", "null", "nope"], with_metadata: true }));
  check("get_bulk with metadata; a missing key is (None, None) (K22)", bulk.values, {
    number: ["v-number", 123],
    array: ["v-array", [1, "two", null]],
    null: ["v-null", null],
    nope: [null, null],
  });
  const limit = await ops({ namespace: "meta" }, [
    { op: "put", key: "m", text: "v", metadata: "x".repeat(1022) },
    { op: "put", key: "m", text: "v", metadata: "x".repeat(1023) },
  ]);
  check("K11: 1024 bytes of metadata pass", limit[0].ok, true);
  check("K11: 1025 bytes fail", limit[1].error, "KV PUT failed: 413 Metadata length of 1025 exceeds limit of 1024.");
});

scenario("expiration and expiration_ttl in real time (K13-K16, K31, K31a)", async () => {
  const ns = { namespace: "ttl" };
  const nowS = Math.floor(Date.now() / 1000);
  const absolute = nowS + 3;
  const r = await ops(ns, [
    { op: "put", key: "ttl1", text: "soon gone", expiration_ttl: 1 },
    { op: "put", key: "abs", text: "later gone", expiration: absolute, metadata: { m: 1 } },
    { op: "put", key: "both", text: "ttl wins", expiration: nowS + 3600, expiration_ttl: 1 },
    { op: "put", key: "cleared", text: "first", expiration_ttl: 1 },
    { op: "put", key: "cleared", text: "second" },
    { op: "put", key: "stays", text: "forever" },
  ]);
  cost("put with expiration and metadata", r[1]);
  cost("put, overwrite of a key with an expiration", r[4]);
  check("every put succeeds", r.map((x) => x.ok), r.map(() => true));
  const typed = await sql("DB", "SELECT key, typeof(expiration) AS type, expiration FROM ttl_kv_entries WHERE key = 'abs'");
  check("expiration is stored as an INTEGER of milliseconds, not REAL", typed.rows, [{ key: "abs", type: "integer", expiration: absolute * 1000 }]);
  const listed = ok(await op(ns, { op: "list" }));
  check("list reports the expiration in seconds (K15)", listed.keys.find((k) => k.name === "abs"), { name: "abs", expiration: absolute, metadata: { m: 1 } });
  check("overwrite without expiration clears it (K16)", listed.keys.find((k) => k.name === "cleared").expiration, null);
  check("all visible before expiry", ok(await op(ns, { op: "get", key: "ttl1" })).value, "soon gone");

  await sleep(1200);
  const after = await ops(ns, [
    { op: "get", key: "ttl1" },
    { op: "get", key: "ttl1", with_metadata: true },
    { op: "get", key: "both" },
    { op: "get", key: "abs" },
    { op: "get", key: "cleared" },
    { op: "get_bulk", keys: ["ttl1", "abs"] },
    { op: "list" },
  ]);
  cost("get of an expired key", after[0]);
  check("1 s TTL: get is None after 1.2 s (K15)", ok(after[0]).value, null);
  check("1 s TTL: get_with_metadata is (None, None) (K17)", ok(after[1]), { value: null, metadata: null });
  check("expiration_ttl wins over expiration (K13)", ok(after[2]).value, null);
  check("absolute expiration still ahead: visible", ok(after[3]).value, "later gone");
  check("cleared expiration: visible", ok(after[4]).value, "second");
  check("get_bulk hides the expired key", ok(after[5]).values, { ttl1: null, abs: "later gone" });
  check("list hides expired keys (K31)", ok(after[6]).keys.map((k) => k.name), ["abs", "cleared", "stays"]);
  check("reads of expired keys write nothing (K31a)", after.map((x) => x.cost.rows_written), after.map(() => 0));

  await sleep(Math.max(0, absolute * 1000 - Date.now()) + 200);
  check("absolute expiration passed: None", ok(await op(ns, { op: "get", key: "abs" })).value, null);
  const rows = await sql("DB", "SELECT count(*) AS n FROM ttl_kv_entries WHERE namespace = 'ttl'");
  check("expired rows stay until purged (K31a)", rows.rows[0].n, 5);
  const purge = cost("purge_expired (3 expired rows)", await op(ns, { op: "purge_expired", max_rows: 100 }));
  check("purge_expired removes the 3 expired rows", ok(purge).removed, 3);
  check("the live keys remain", ok(await op(ns, { op: "list" })).keys.map((k) => k.name), ["cleared", "stays"]);

  const errors = await ops(ns, [
    { op: "put", key: "k", text: "v", expiration_ttl: 0 },
    { op: "put", key: "k", text: "v", expiration: 1000 },
    { op: "put", key: "k", text: "v", expiration: Math.floor(Date.now() / 1000) },
  ]);
  check("K14: ttl 0", errors[0].error, "KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0.");
  check("K14: expiration in the past", errors[1].error, "KV PUT failed: 400 Invalid expiration of 1000. Please specify integer greater than the current number of seconds since the UNIX epoch.");
  check("K14: expiration now", errors[2].ok, false);
});

scenario("get_bulk: 100 keys, missing keys, duplicates, falsy values (K19-K23)", async () => {
  const ns = { namespace: "bulk" };
  const present = Array.from({ length: 50 }, (_, i) => `p${i}`);
  const puts = await ops(ns, [
    ...present.map((key) => ({ op: "put", key, text: `value ${key}`, metadata: { n: key } })),
    { op: "put", key: "zero", json: "0" },
    { op: "put", key: "false", json: "false" },
    { op: "put", key: "empty", text: "" },
    { op: "put", key: "not-json", text: "{oops" },
  ]);
  check("puts succeed", puts.every((x) => x.ok), true);
  const keys = [...present, ...Array.from({ length: 50 }, (_, i) => `missing${i}`)];
  const hundred = cost("get_bulk, 100 keys (50 present)", await op(ns, { op: "get_bulk", keys }));
  check("get_bulk of 100 keys is one D1 call", hundred.cost.calls, 1);
  check("get_bulk of 100 keys of small values (50 present) reads at most 101 rows", hundred.cost.rows_read <= 101, true);
  const values = ok(hundred).values;
  check("an entry for every key (K20)", Object.keys(values).length, 100);
  check("present and missing", [values.p0, values.p49, values.missing0], ["value p0", "value p49", null]);
  const r = await ops(ns, [
    { op: "get_bulk", keys: ["p1", "p1", "missing"] },
    { op: "get_bulk", keys: ["p1", "missing"], with_metadata: true },
    { op: "get_bulk", keys: ["zero", "false", "missing"], as: "json" },
    { op: "get_bulk", keys: ["empty"] },
    { op: "get_bulk", keys: ["zero", "not-json"], as: "json" },
    { op: "get_bulk", keys: ["p1", "missing"], as: "json", with_metadata: true },
    { op: "get_bulk", keys: ["p1"], cache_ttl: 30 },
  ]);
  cost("get_bulk with metadata, 2 keys", r[1]);
  check("duplicates collapse (K20)", ok(r[0]).values, { p1: "value p1", missing: null });
  check("with metadata; missing is (None, None) (K22)", ok(r[1]).values, { p1: ["value p1", { n: "p1" }], missing: [null, null] });
  check("falsy JSON survives (K23)", ok(r[2]).values, { zero: "0", false: "false", missing: null });
  check("the empty string survives (K23)", ok(r[3]).values, { empty: "" });
  check("K21: a non-JSON value fails json", r[4].error, "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value");
  check("K21: json with metadata where a text is not JSON fails", r[5].ok, false);
  check("K18: cache_ttl 30 is accepted", ok(r[6]).values, { p1: "value p1" });
});

scenario("delete (K24)", async () => {
  const ns = { namespace: "del" };
  const r = await ops(ns, [
    { op: "put", key: "gone", text: "v", metadata: { a: 1 } },
    { op: "put", key: "gone-ttl", text: "v", expiration_ttl: 3600 },
    { op: "delete", key: "gone" },
    { op: "delete", key: "gone-ttl" },
    { op: "delete", key: "never-was" },
    { op: "get", key: "gone" },
    { op: "list" },
  ]);
  cost("delete hit", r[2]);
  cost("delete hit, key with expiration", r[3]);
  cost("delete miss", r[4]);
  check("deletes succeed, a missing key too", [r[2].ok, r[3].ok, r[4].ok], [true, true, true]);
  check("after delete: None", ok(r[5]).value, null);
  check("after delete: not listed", ok(r[6]).keys, []);
});

scenario("list over 2,500 keys: prefix, limit, cursor (K25-K30)", async () => {
  const ns = { namespace: "big" };
  const keys = Array.from({ length: 2500 }, (_, i) => `item:${String(i).padStart(5, "0")}`);
  // Ten requests of 250 puts, each request with its own D1Namespace.
  for (let i = 0; i < keys.length; i += 250) {
    const r = await ops(ns, keys.slice(i, i + 250).map((key) => ({ op: "put", key, text: "" })));
    if (!r.every((x) => x.ok)) throw new Error(`put failed: ${r.find((x) => !x.ok).error}`);
  }
  ok(await op(ns, { op: "put", key: "other:1", text: "" }));
  ok(await op(ns, { op: "put", key: "aaa", text: "" }));

  const pages = [];
  let cursor;
  do {
    const r = await op(ns, { op: "list", prefix: "item:", limit: 1000, ...(cursor ? { cursor } : {}) });
    if (pages.length === 0) cost("list, 1000 keys", r);
    const page = ok(r);
    pages.push(page);
    cursor = page.cursor;
    if (pages.length > 5) throw new Error("list does not end");
  } while (cursor);
  check("pages of 1000, 1000, 500", pages.map((p) => p.keys.length), [1000, 1000, 500]);
  check("list_complete only on the last page (K29)", pages.map((p) => p.list_complete), [false, false, true]);
  check("a cursor on every page but the last (K29)", pages.map((p) => p.cursor !== null), [true, true, false]);
  check("every key exactly once, in order (K29)", pages.flatMap((p) => p.keys.map((k) => k.name)), keys);

  const everything = ok(await op(ns, { op: "list" }));
  check("default limit is 1000 (K28)", [everything.keys.length, everything.list_complete], [1000, false]);
  check("no prefix starts at the lowest key", everything.keys[0].name, "aaa");
  check("limit 0 means the default (K28)", ok(await op(ns, { op: "list", limit: 0 })).keys.length, 1000);

  const small = cost("list, prefix, limit 10", await op(ns, { op: "list", prefix: "item:", limit: 10 }));
  const first = ok(small);
  check("limit 10", first.keys.map((k) => k.name), keys.slice(0, 10));
  // K30: a key inserted after the cursor's position is seen on the next page; the limit may change.
  ok(await op(ns, { op: "put", key: "item:00009a", text: "" }));
  const next = ok(await op(ns, { op: "list", prefix: "item:", limit: 3, cursor: first.cursor }));
  check("a key written after the cursor appears next (K30)", next.keys.map((k) => k.name), ["item:00009a", "item:00010", "item:00011"]);
  const tail = ok(await op(ns, { op: "list", prefix: "item:024", cursor: next.cursor }));
  check("the cursor continues within another prefix", tail.keys.length, 100);
  check("prefix 'other:'", ok(await op(ns, { op: "list", prefix: "other:" })).keys.map((k) => k.name), ["other:1"]);

  const errors = await ops(ns, [
    { op: "list", limit: 1001 },
    { op: "list", cursor: "not a cursor!" },
    { op: "list", prefix: "x".repeat(513) },
  ]);
  check("K28: limit 1001", errors[0].error, "KV GET failed: 400 Invalid key_count_limit of 1001. Please specify an integer less than 1000.");
  check("K30: a malformed cursor is an error", errors[1].error?.startsWith("KV GET failed: 400 Invalid cursor"), true);
  check("K5: prefix over 512 bytes", errors[2].error, "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.");
});

scenario("multi-byte keys, up to U+10FFFF and 512 bytes (K1, K4, K26)", async () => {
  const ns = { namespace: "mb" };
  const max = "\u{10FFFF}";
  const keys = ["é", "日本語", "😀", max, `a${max}b`, max.repeat(128), "z", "KEY", "key"];
  const puts = await ops(ns, keys.map((key, i) => ({ op: "put", key, text: `v${i}` })));
  check("all stored (512 bytes of U+10FFFF included)", puts.map((x) => x.ok), keys.map(() => true));
  const gets = await ops(ns, keys.map((key) => ({ op: "get", key })));
  check("all read back", gets.map((x) => ok(x).value), keys.map((_, i) => `v${i}`));
  check("list in UTF-8 byte order (K26)", ok(await op(ns, { op: "list" })).keys.map((k) => k.name), byteOrder(keys));
  check("get_bulk of multi-byte keys", ok(await op(ns, { op: "get_bulk", keys: [max, "😀"] })).values, { [max]: "v3", "😀": "v2" });
  check("prefix U+10FFFF", ok(await op(ns, { op: "list", prefix: max })).keys.map((k) => k.name), [max, max.repeat(128)]);
  const long = await ops(ns, [
    { op: "put", key: max.repeat(128) + "a", text: "v" },
    { op: "get", key: "😀".repeat(129) },
  ]);
  check("K4: 513 bytes", long[0].error, "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.");
  check("K4: the length is in bytes", long[1].error, "KV GET failed: 414 UTF-8 encoded length of 516 exceeds key length limit of 512.");
});

scenario("order and literal prefixes (K26, K27)", async () => {
  const ns = { namespace: "order" };
  const keys = ["!", ", ", "KEY", "key", "z", "é", "a%", "a%b", "a_b", "a\\b", "ab", "p", "pé", "p\u{10FFFF}", "p\u{10FFFF}x", "q"];
  const puts = await ops(ns, keys.map((key) => ({ op: "put", key, text: "" })));
  check("stored", puts.every((x) => x.ok), true);
  const names = async (prefix) => ok(await op(ns, { op: "list", prefix })).keys.map((k) => k.name);
  check("byte order: '!' < ', ', 'KEY' < 'key', 'z' < 'é' (K26)", await names(""), byteOrder(keys));
  check("'%' is literal (K27)", await names("a%"), ["a%", "a%b"]);
  check("'_' is literal (K27)", await names("a_"), ["a_b"]);
  check("'\\' is literal (K27)", await names("a\\"), ["a\\b"]);
  check("multi-byte characters after the prefix are included (K27)", await names("p"), ["p", "pé", "p\u{10FFFF}", "p\u{10FFFF}x"]);
  check("prefixes are case-sensitive (K27)", [await names("K"), await names("k")], [["KEY"], ["key"]]);
});

scenario("namespaces sharing a table; default table names (K32, K33)", async () => {
  const alpha = { namespace: "alpha", table: "shared_kv" };
  const beta = { namespace: "beta", table: "shared_kv" };
  ok(await op(alpha, { op: "put", key: "same", text: "from alpha" }));
  ok(await op(beta, { op: "put", key: "same", text: "from beta" }));
  ok(await op(beta, { op: "put", key: "only-beta", text: "b" }));
  check("alpha sees its value", ok(await op(alpha, { op: "get", key: "same" })).value, "from alpha");
  check("beta sees its value", ok(await op(beta, { op: "get", key: "same" })).value, "from beta");
  check("alpha lists only its keys", ok(await op(alpha, { op: "list" })).keys.map((k) => k.name), ["same"]);
  check("alpha's get_bulk does not see beta's keys", ok(await op(alpha, { op: "get_bulk", keys: ["same", "only-beta"] })).values, { same: "from alpha", "only-beta": null });
  ok(await op(alpha, { op: "delete", key: "same" }));
  check("delete in alpha leaves beta's key", ok(await op(beta, { op: "get", key: "same" })).value, "from beta");
  const tables = await sql("DB", "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('shared_kv', 'alpha_kv_entries', 'ttl_kv_entries') ORDER BY name");
  check("an explicit table; {namespace}_kv_entries by default", tables.rows.map((r) => r.name), ["shared_kv", "ttl_kv_entries"]);

  const refused = async (opts) => {
    try {
      await ops(opts, [{ op: "get", key: "k" }]);
      return "accepted";
    } catch (e) {
      return e.message.replace(/^\/ops: HTTP 400: /, "");
    }
  };
  check("K33: namespace not an identifier", await refused({ namespace: "bad-name" }), 'invalid namespace name "bad-name": only ASCII letters, digits and `_` are allowed');
  check("K33: reserved table name", await refused({ table: "_cf_kv" }), 'invalid table name "_cf_kv": names starting with `_cf` or `sqlite_` are reserved by D1 and SQLite');
  check("K33: table name with a quote", await refused({ table: 'x"; DROP TABLE shared_kv; --' }), 'invalid table name "x\\"; DROP TABLE shared_kv; --": only ASCII letters, digits and `_` are allowed');
});

scenario("every error path of K2-K28, with KV's text and no D1 call", async () => {
  const long = "x".repeat(513);
  const cases = [
    ["K2 get", { op: "get", key: "" }, "Key name cannot be empty."],
    ["K2 put", { op: "put", key: "", text: "v" }, "Key name cannot be empty."],
    ["K2 delete", { op: "delete", key: "" }, "Key name cannot be empty."],
    ["K2 get_bulk", { op: "get_bulk", keys: ["a", ""] }, "KV GET_BULK failed: 400 Key names must not be empty"],
    ["K3 get_bulk .", { op: "get_bulk", keys: ["."] }, 'KV GET_BULK failed: 400 Illegal key name ".". Please use a different name.'],
    ["K3 get_bulk ..", { op: "get_bulk", keys: ["a", ".."] }, 'KV GET_BULK failed: 400 Illegal key name "..". Please use a different name.'],
    ["K3 get .", { op: "get", key: "." }, '"." is not allowed as a key name.'],
    ["K3 put ..", { op: "put", key: "..", text: "v" }, '".." is not allowed as a key name.'],
    ["K3 delete .", { op: "delete", key: "." }, '"." is not allowed as a key name.'],
    ["K4 get", { op: "get", key: long }, "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."],
    ["K4 get_with_metadata", { op: "get", key: long, with_metadata: true }, "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."],
    ["K4 put", { op: "put", key: long, text: "v" }, "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."],
    ["K4 put_bytes", { op: "put", key: long, bytes: [1] }, "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."],
    ["K4 delete", { op: "delete", key: long }, "KV DELETE failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."],
    ["K5 get_bulk", { op: "get_bulk", keys: [long] }, "KV GET_BULK failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."],
    ["K5 list prefix", { op: "list", prefix: long }, "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."],
    ["K6 value", { op: "put", key: "k", repeat: 26_214_401 }, "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400."],
    ["K11 metadata", { op: "put", key: "k", text: "v", metadata: { x: "y".repeat(1017) } }, "KV PUT failed: 413 Metadata length of 1025 exceeds limit of 1024."],
    ["K14 ttl 0", { op: "put", key: "k", text: "v", expiration_ttl: 0 }, "KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0."],
    ["K14 expiration 1000", { op: "put", key: "k", text: "v", expiration: 1000 }, "KV PUT failed: 400 Invalid expiration of 1000. Please specify integer greater than the current number of seconds since the UNIX epoch."],
    ["K18 get cache_ttl", { op: "get", key: "k", cache_ttl: 10 }, "KV GET failed: 400 Invalid cache_ttl of 10. Cache TTL must be at least 30."],
    ["K18 get_bulk cache_ttl", { op: "get_bulk", keys: ["k"], cache_ttl: 10 }, "KV GET_BULK failed: 400 Invalid cache_ttl of 10. Cache TTL must be at least 30."],
    ["K19 no keys", { op: "get_bulk", keys: [] }, "KV GET_BULK failed: 400 You must request a minimum of 1 key"],
    ["K19 101 keys", { op: "get_bulk", keys: Array.from({ length: 101 }, (_, i) => `k${i}`) }, "KV GET_BULK failed: 400 You can request a maximum of 100 keys"],
    ["K28 list limit", { op: "list", limit: 1001 }, "KV GET failed: 400 Invalid key_count_limit of 1001. Please specify an integer less than 1000."],
  ];
  const results = await ops({ namespace: "errors" }, cases.map(([, o]) => o));
  cases.forEach(([name, , expected], i) => {
    check(`${name}: error text`, results[i].error, expected);
    check(`${name}: refused before D1 (0 calls)`, results[i].cost.calls, 0);
  });
  // K21 needs a stored value that is not JSON, so it reaches D1.
  ok(await op({ namespace: "errors" }, { op: "put", key: "text", text: "plain" }));
  const k21 = await op({ namespace: "errors" }, { op: "get_bulk", keys: ["text"], as: "json" });
  check("K21 get_bulk json of a non-JSON value", k21.error, "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value");
});

// ---------------------------------------------------------------- atomic commits and versionstamps

// Rules A1-A16 as in shared/atomic-semantics.md. A commit is `{op: "atomic", checks, mutations}`
// (worker/src/ops.rs); stamps travel as their 32 hex digits, counters as decimal text.

const STAMP = /^[0-9a-f]{32}$/;
const I64_MAX = "9223372036854775807";
const I64_MIN = "-9223372036854775808";

/** An atomic commit as one operation. */
const atomic = (checks, mutations) => ({ op: "atomic", checks, mutations });
/** A get through the `_entry` forms: value, metadata, expiration and versionstamp. */
const getEntry = (key, extra = {}) => ({ op: "get", key, entry: true, ...extra });
/** The rows of a namespace's table as stored (key, value, metadata, expiration, version). */
async function snapshot(table, namespace) {
  const r = await sql(
    "DB",
    `SELECT key, CAST(value AS TEXT) AS value, metadata, expiration, chunks, version FROM "${table}" WHERE namespace = ?1 ORDER BY key`,
    [namespace],
  );
  return r.rows;
}
const notAnInteger = (key, operation) => `the value of key ${JSON.stringify(key)} is not an integer, so ${operation} cannot apply to it; nothing was written`;
const overflow = (key, delta) => `adding ${delta} to the value of key ${JSON.stringify(key)} overflows a 64-bit integer; nothing was written`;

scenario("versionstamps: a new one per write, one per commit, a new one after a delete (A1-A3)", async () => {
  const ns = { namespace: "stamps" };
  const r = await ops(ns, [
    { op: "put", key: "a", text: "1" },
    getEntry("a"),
    { op: "put", key: "a", text: "1" },
    getEntry("a"),
    { op: "put", key: "a", bytes: [1, 2] },
    getEntry("a", { as: "bytes" }),
    atomic([], [{ type: "put", key: "a", text: "2" }]),
    getEntry("a"),
    atomic([], [{ type: "sum", key: "n", n: "1" }]),
    getEntry("n"),
    atomic([], [{ type: "sum", key: "n", n: "1" }]),
    getEntry("n"),
    { op: "increment", key: "n", delta: "1" },
    getEntry("n"),
    atomic([], [{ type: "min", key: "n", n: "0" }]),
    getEntry("n"),
    // A max that keeps the value is still a write.
    atomic([], [{ type: "max", key: "n", n: "-5" }]),
    getEntry("n"),
  ]);
  check("every operation succeeds", r.map((x) => x.ok), r.map(() => true));
  const entries = [1, 3, 5, 7, 9, 11, 13, 15, 17].map((i) => ok(r[i]));
  check("A1: each stamp is 32 lowercase hex digits", entries.every((e) => STAMP.test(e.version)), true);
  check("A1: every write gave a new stamp (put, the same value again, put_bytes, atomic put, sum, sum, increment, min, max)", new Set(entries.map((e) => e.version)).size, entries.length);
  check("A1: each commit returns the stamp its entry reads with", [6, 8, 10, 14, 16].map((i) => ok(r[i]).committed), [7, 9, 11, 15, 17].map((i) => ok(r[i]).version));
  check("values along the way", entries.map((e) => e.value), ["1", "1", [1, 2], "2", "1", "2", "3", "0", "0"]);
  const stored = await sql("DB", "SELECT typeof(version) AS type, version FROM stamps_kv_entries WHERE namespace = 'stamps' AND key = 'a'");
  check("A5: the stamp is stored as TEXT in the entry's own row", stored.rows, [{ type: "text", version: entries[3].version }]);

  // A2: every mutation of one commit shares its stamp; two commits never share one.
  const c = await ops(ns, [
    atomic([], [
      { type: "put", key: "x", text: "x" },
      { type: "put_bytes", key: "y", bytes: [0, 255] },
      { type: "sum", key: "z", n: "5" },
      { type: "min", key: "w", n: "-1" },
      { type: "max", key: "v", n: "1" },
      { type: "delete", key: "a" },
    ]),
    ...["x", "y", "z", "w", "v", "a"].map((key) => getEntry(key)),
    atomic([], [{ type: "put", key: "x", text: "x" }]),
    atomic([], [{ type: "put", key: "x", text: "x" }]),
  ]);
  const committed = ok(c[0]).committed;
  check("A2: the commit returns a stamp", STAMP.test(committed), true);
  check("A2: every entry the commit wrote has its stamp", c.slice(1, 6).map((x) => ok(x).version), Array(5).fill(committed));
  check("A2: and the deleted key is gone", ok(c[6]), { value: null, metadata: null, expiration: null, version: null });
  check("A2: the same commit twice gives two stamps", new Set([committed, ok(c[7]).committed, ok(c[8]).committed]).size, 3);

  // A3: deleted and written again, with the same value: a new stamp, and the old one no longer holds.
  const d = await ops(ns, [
    { op: "put", key: "aba", text: "same" },
    getEntry("aba"),
    { op: "delete", key: "aba" },
    getEntry("aba"),
    { op: "put", key: "aba", text: "same" },
    getEntry("aba"),
  ]);
  const [before, gone, after] = [ok(d[1]), ok(d[3]), ok(d[5])];
  check("A3: a deleted key has no entry and no stamp", gone, { value: null, metadata: null, expiration: null, version: null });
  check("A3: written again with the same value: a new stamp", [after.value, after.version !== before.version], ["same", true]);
  const aba = await ops(ns, [
    atomic([["aba", before.version]], [{ type: "put", key: "aba", text: "ABA" }]),
    atomic([["aba", after.version]], [{ type: "delete", key: "aba" }]),
    atomic([["aba", null]], [{ type: "put", key: "aba", text: "third" }]),
    getEntry("aba"),
  ]);
  check("A3: the stamp from before the delete does not hold (no ABA)", ok(aba[0]).committed, null);
  check("A3: the current stamp holds; an atomic delete", STAMP.test(ok(aba[1]).committed), true);
  check("A3: after an atomic delete, check(None) holds", [STAMP.test(ok(aba[2]).committed), ok(aba[3]).value], [true, "third"]);
  check("A3: and the key has that commit's stamp", ok(aba[3]).version, ok(aba[2]).committed);
});

scenario("D1 cost of versionstamps and atomic commits: a get with its stamp reads 1 row, a put writes 1 (A4, A7, A14)", async () => {
  const ns = { namespace: "stamp_cost" };
  ok(await op(ns, { op: "put", key: "warm", text: "" }));
  const r = await ops(ns, [
    { op: "put", key: "k", text: "v" },
    { op: "put", key: "k", text: "w" },
    { op: "put", key: "t", text: "v", expiration_ttl: 600, metadata: { m: 1 } },
    { op: "get", key: "k" },
    getEntry("k"),
    { op: "get", key: "k", with_metadata: true },
    getEntry("t"),
    { op: "get", key: "missing" },
    getEntry("missing"),
  ]);
  cost("put, new key (A4: the stamp adds no row)", r[0]);
  cost("put, overwrite (A4)", r[1]);
  cost("put with expiration_ttl and metadata (A4)", r[2]);
  cost("get hit, text, beside the get with its entry (A4)", r[3]);
  cost("get hit with its entry (value, metadata, expiration, version)", r[4]);
  cost("get miss with its entry", r[8]);
  check("A4: a put writes 1 row, stamp included", [r[0].cost.rows_written, r[1].cost.rows_written], [1, 1]);
  check("A4: a put with an expiration writes 2 rows (the entry and its index entry)", r[2].cost.rows_written, 2);
  check("A4: a get with its stamp costs what a plain get costs", r[4].cost, r[3].cost);
  check("A4: 1 call, 1 statement, 1 row read, nothing written", r[4].cost, { calls: 1, statements: 1, rows_read: 1, rows_written: 0 });
  check("A4: a get with its stamp of a key with an expiration reads 1 row", r[6].cost.rows_read, 1);
  check("A4: a missing key with its stamp costs what a plain miss costs", r[8].cost, r[7].cost);
  const t = ok(r[6]);
  const nowS = Math.floor(Date.now() / 1000);
  check("the entry: value, metadata, expiration in seconds, stamp", [t.value, t.metadata, t.expiration > nowS + 590 && t.expiration <= nowS + 601, STAMP.test(t.version)], ["v", { m: 1 }, true, true]);
  check("the entry's value is the plain get's", ok(r[4]).value, ok(r[3]).value);

  const k = ok(r[4]).version;
  const c = await ops(ns, [
    atomic([["k", k]], [{ type: "put", key: "k", text: "x" }]),
    atomic([], [{ type: "put", key: "p", text: "x" }]),
    atomic([], [{ type: "sum", key: "hits", n: "1" }]),
    atomic([], [{ type: "sum", key: "hits", n: "1" }]),
    { op: "increment", key: "views", delta: "1" },
    { op: "increment", key: "views", delta: "1" },
    atomic([["k", k]], [{ type: "put", key: "k", text: "y" }]),
    atomic([["k", k], ["p", null]], [{ type: "put", key: "k", text: "y" }, { type: "sum", key: "hits", n: "1" }]),
    atomic([["nope", null], ["nada", null]], []),
    atomic([], [{ type: "delete", key: "p" }]),
    { op: "increment", key: "rate", delta: "1", expiration_ttl: 60 },
    { op: "increment", key: "rate", delta: "1", expiration_ttl: 60 },
  ]);
  check("every commit succeeds", c.map((x) => x.ok), c.map(() => true));
  cost("atomic commit: check + put", c[0]);
  cost("atomic commit: one put, no check", c[1]);
  cost("atomic commit: sum, new key", c[2]);
  cost("atomic commit: sum, existing key", c[3]);
  cost("increment, new key", c[4]);
  cost("increment, existing key", c[5]);
  cost("atomic commit: failed check (1 check, 1 put; no meta from D1)", c[6]);
  cost("atomic commit: failed check (2 checks, put + sum; no meta from D1)", c[7]);
  cost("atomic commit: 2 checks only, holding", c[8]);
  cost("atomic commit: one delete", c[9]);
  cost("increment_with expiration_ttl, new key (a rate limiter's first hit)", c[10]);
  cost("increment_with expiration_ttl, live key (a later hit)", c[11]);
  check("A7: check + put is one call of 2 statements", [c[0].cost.calls, c[0].cost.statements], [1, 2]);
  check("A4: a put in a commit writes 1 row, as a plain put", [c[0].cost.rows_written, c[1].cost.rows_written], [1, 1]);
  check("A12: a sum is one call of one statement", [c[2].cost, c[3].cost].map((x) => [x.calls, x.statements]), [[1, 1], [1, 1]]);
  check("A14: increment is one call of one statement", [c[4].cost, c[5].cost].map((x) => [x.calls, x.statements]), [[1, 1], [1, 1]]);
  check("A14: increment returns the new value", [ok(c[4]).value, ok(c[5]).value, ok(c[10]).value, ok(c[11]).value], ["1", "2", "1", "2"]);
  check("A14: increment_with is one call of one statement", [c[10].cost, c[11].cost].map((x) => [x.calls, x.statements]), [[1, 1], [1, 1]]);
  // A failed check fails D1's batch, which then reports no meta: its rows read and written show
  // as 0. That it wrote nothing is checked by reading back, below and in the next scenarios.
  check("A7: a failed check: not committed, one call", [ok(c[6]).committed, c[6].cost.calls], [null, 1]);
  check("A7: a failed check among several: one call of 3 statements", [ok(c[7]).committed, c[7].cost.calls, c[7].cost.statements], [null, 1, 3]);
  check("A7: a commit of checks only that hold: committed, one call of 1 statement, nothing written", [STAMP.test(ok(c[8]).committed), c[8].cost.calls, c[8].cost.statements, c[8].cost.rows_written], [true, 1, 1, 0]);
  check("A7: a commit of checks only that fail: not committed", ok(await op(ns, atomic([["nope", null], ["k", null]], []))).committed, null);
  const after = await ops(ns, [{ op: "get", key: "k" }, { op: "get", key: "hits" }]);
  check("the failed commits wrote nothing", [ok(after[0]).value, ok(after[1]).value], ["x", "2"]);
});

scenario("counters beyond 2^53 stay exact: increment and sum take and give decimal text (A5, A12, A14)", async () => {
  const ns = { namespace: "counters" };
  ok(await op(ns, { op: "put", key: "warm", text: "" }));
  const r = await ops(ns, [
    { op: "increment", key: "big", delta: "9007199254740993" },
    { op: "increment", key: "big", delta: 1 },
    { op: "get", key: "big" },
    { op: "get", key: "big", as: "json" },
    atomic([], [{ type: "sum", key: "big", n: "-9007199254740000" }]),
    { op: "get", key: "big" },
    { op: "increment", key: "low", delta: I64_MIN },
    { op: "increment", key: "high", delta: I64_MAX },
    atomic([], [{ type: "sum", key: "s", n: "18014398509481985" }, { type: "sum", key: "s", n: "-1" }]),
    { op: "get", key: "s" },
    { op: "increment", key: "zero", delta: "0" },
    { op: "increment", key: "neg", delta: "-3" },
    { op: "increment", key: "neg", delta: "-4" },
  ]);
  check("every operation succeeds", r.map((x) => x.ok), r.map(() => true));
  check("A5: increment by 2^53 + 1 returns it exactly", ok(r[0]).value, "9007199254740993");
  check("A5: and + 1", ok(r[1]).value, "9007199254740994");
  check("A12: stored as the decimal text (get text, get json)", [ok(r[2]).value, ok(r[3]).value], ["9007199254740994", "9007199254740994"]);
  check("A5: a sum in a commit is exact", ok(r[5]).value, "994");
  check("A5: i64::MIN and i64::MAX round-trip", [ok(r[6]).value, ok(r[7]).value], [I64_MIN, I64_MAX]);
  check("A9, A5: two sums of one key in one commit", ok(r[9]).value, "18014398509481984");
  check("increment by 0 creates 0; negative deltas", [ok(r[10]).value, ok(r[11]).value, ok(r[12]).value], ["0", "-3", "-7"]);
  check("A14: every increment is one call of one statement", [0, 1, 6, 7, 10, 11, 12].map((i) => [r[i].cost.calls, r[i].cost.statements]), Array(7).fill([1, 1]));
  const stored = await sql("DB", "SELECT key, typeof(value) AS type, value FROM counters_kv_entries WHERE namespace = 'counters' AND key IN ('big', 'high', 'low') ORDER BY key");
  check("A12: counters are TEXT in the table, never REAL", stored.rows, [
    { key: "big", type: "text", value: "994" },
    { key: "high", type: "text", value: I64_MAX },
    { key: "low", type: "text", value: I64_MIN },
  ]);
});

scenario("checks: a live stamp holds, None holds for a missing key, anything else fails (A6, A7)", async () => {
  const ns = { namespace: "checks" };
  const setup = await ops(ns, [
    { op: "put", key: "live", text: "v" },
    { op: "put", key: "other", text: "v" },
    getEntry("live"),
    getEntry("other"),
  ]);
  const live = ok(setup[2]).version;
  const other = ok(setup[3]).version;
  const zero = "0".repeat(32);
  const commit = async (checks) => ok(await op(ns, atomic(checks, [{ type: "sum", key: "commits", n: "1" }]))).committed !== null;
  check("A6: the key's own stamp holds", await commit([["live", live]]), true);
  check("A6: another key's stamp fails", await commit([["live", other]]), false);
  check("A6: the zero stamp fails", await commit([["live", zero]]), false);
  check("A6: None on a present key fails", await commit([["live", null]]), false);
  check("A6: None on a missing key holds", await commit([["missing", null]]), true);
  check("A6: a stamp on a missing key fails", await commit([["missing", live]]), false);
  check("A6: several checks that all hold", await commit([["live", live], ["other", other], ["missing", null]]), true);
  check("A6: one failing among several", await commit([["live", live], ["other", other], ["missing", other]]), false);
  check("A6: the same key twice, both holding", await commit([["live", live], ["live", live]]), true);
  check("A6: the same key twice, one failing", await commit([["live", live], ["live", null]]), false);
  check("only the 4 commits whose checks held were applied", ok(await op(ns, { op: "get", key: "commits" })).value, "4");

  // A7: checks see the data as it was before the commit's own mutations.
  const own = await ops(ns, [
    atomic([["fresh", null]], [{ type: "put", key: "fresh", text: "1" }, { type: "put", key: "live", text: "changed" }]),
    atomic([["fresh", null]], [{ type: "put", key: "fresh", text: "2" }]),
    getEntry("live"),
    atomic([["live", live]], [{ type: "put", key: "live", text: "stale" }]),
  ]);
  check("A7: check(None) then put of the same key commits", STAMP.test(ok(own[0]).committed), true);
  check("A7: the same commit again fails: the key is there now", ok(own[1]).committed, null);
  check("A7: the commit's stamp replaced the one the check held on", [ok(own[2]).value, ok(own[2]).version], ["changed", ok(own[0]).committed]);
  check("A6: the old stamp no longer holds", ok(own[3]).committed, null);
});

scenario("expiration in commits, in real time: expired keys fail their stamp and count as missing; sum_with's ttl applies to a new entry only (A6, A11, A13)", async () => {
  const ns = { namespace: "atomic_ttl" };
  const nowS = () => Math.floor(Date.now() / 1000);
  const setup = await ops(ns, [
    { op: "put", key: "soon", text: "v", expiration_ttl: 1 },
    getEntry("soon"),
    atomic([], [{ type: "put", key: "short", text: "s", expiration_ttl: 1, metadata: { m: "short" } }]),
    getEntry("short"),
    atomic([], [{ type: "sum", key: "fresh", n: "1", expiration_ttl: 60, metadata: { w: 1 } }]),
    getEntry("fresh"),
    atomic([], [{ type: "sum", key: "fresh", n: "1", expiration_ttl: 5, metadata: { w: 2 } }]),
    getEntry("fresh"),
    { op: "put", key: "plain", text: "10", metadata: { m: "kept" } },
    atomic([], [{ type: "sum", key: "plain", n: "5", expiration_ttl: 60, metadata: { m: "new" } }]),
    getEntry("plain"),
    { op: "increment", key: "window", delta: "1", expiration_ttl: 1 },
    getEntry("window"),
    { op: "increment", key: "window", delta: "1", expiration_ttl: 60 },
    getEntry("window"),
    { op: "put", key: "dying", text: "100", expiration_ttl: 1, metadata: { old: true } },
    atomic([], [{ type: "max", key: "dying-max", n: "7", expiration_ttl: 1 }]),
  ]);
  check("every operation succeeds", setup.map((x) => x.ok), setup.map(() => true));
  const soon = ok(setup[1]).version;
  const t0 = nowS();
  const short = ok(setup[3]);
  check("A11: a put in a commit takes metadata and expiration_ttl", [short.value, short.metadata, short.expiration >= t0 && short.expiration <= t0 + 2], ["s", { m: "short" }, true]);
  const fresh = ok(setup[5]);
  check("A13: a sum that creates the entry takes the mutation's ttl and metadata", [fresh.value, fresh.metadata, fresh.expiration >= t0 + 58 && fresh.expiration <= t0 + 61], ["1", { w: 1 }, true]);
  check("A13: a sum on the live entry keeps its expiration and metadata", [ok(setup[7]).value, ok(setup[7]).metadata, ok(setup[7]).expiration], ["2", { w: 1 }, fresh.expiration]);
  check("A13: a sum on a live entry without expiration keeps none, and its metadata", [ok(setup[10]).value, ok(setup[10]).metadata, ok(setup[10]).expiration], ["15", { m: "kept" }, null]);
  const window = ok(setup[12]);
  check("A13: increment_with's ttl starts a window; a later hit does not extend it", [ok(setup[11]).value, ok(setup[13]).value, ok(setup[14]).expiration], ["1", "2", window.expiration]);
  check("A6: before expiry the stamp holds", ok(await op(ns, atomic([["soon", soon]], []))).committed !== null, true);

  await sleep(1200);
  const after = await ops(ns, [
    getEntry("soon"),
    atomic([["soon", soon]], [{ type: "put", key: "flag1", text: "x" }]),
    atomic([["soon", null]], [{ type: "put", key: "flag2", text: "x" }]),
    getEntry("short"),
    { op: "increment", key: "window", delta: "1", expiration_ttl: 60 },
    getEntry("window"),
    atomic([], [{ type: "sum", key: "dying", n: "7" }]),
    getEntry("dying"),
    atomic([], [{ type: "min", key: "dying-max", n: "9", expiration_ttl: 60, metadata: "again" }]),
    getEntry("dying-max"),
    { op: "get", key: "flag1" },
    { op: "get", key: "flag2" },
  ]);
  check("every operation succeeds", after.map((x) => x.ok), after.map(() => true));
  const t1 = nowS();
  check("an expired key reads as missing", ok(after[0]).version, null);
  check("A6: an expired key's stamp fails", ok(after[1]).committed, null);
  check("A6: None holds on an expired key", STAMP.test(ok(after[2]).committed), true);
  check("A6: only the commit whose check held wrote", [ok(after[10]).value, ok(after[11]).value], [null, "x"]);
  check("A11: a put with expiration_ttl 1 in a commit expired", ok(after[3]).value, null);
  const renewed = ok(after[5]);
  check("A13: the window ended: increment starts again from the delta, with its ttl", [ok(after[4]).value, renewed.expiration >= t1 + 58 && renewed.expiration <= t1 + 61], ["1", true]);
  check("A12, A13: a sum on an expired entry starts from 0, without the old metadata and expiration", [ok(after[7]).value, ok(after[7]).metadata, ok(after[7]).expiration], ["7", null, null]);
  const minned = ok(after[9]);
  check("A12, A13: a min on an expired entry takes the operand and the mutation's options", [minned.value, minned.metadata, minned.expiration >= t1 + 58 && minned.expiration <= t1 + 61], ["9", "again", true]);
});

scenario("a failed check writes nothing, a commit that holds writes everything (A7)", async () => {
  const ns = { namespace: "all_or_nothing" };
  const setup = await ops(ns, [
    { op: "put", key: "a", text: "a0", metadata: { v: 0 } },
    { op: "put", key: "b", text: "b0" },
    { op: "increment", key: "c", delta: "5" },
    getEntry("a"),
    getEntry("b"),
  ]);
  check("setup", setup.map((x) => x.ok), setup.map(() => true));
  const [a, b] = [ok(setup[3]).version, ok(setup[4]).version];
  const mutations = [
    { type: "put", key: "a", text: "a1" },
    { type: "delete", key: "b" },
    { type: "sum", key: "c", n: "1" },
    { type: "put", key: "d", text: "new", expiration_ttl: 600 },
    { type: "put_bytes", key: "e", bytes: [1, 2, 3], metadata: { e: true } },
  ];
  const before = await snapshot("all_or_nothing_kv_entries", "all_or_nothing");
  check("the table holds a, b, c", before.map((row) => row.key), ["a", "b", "c"]);
  const failed = await op(ns, atomic([["a", a], ["b", null]], mutations));
  check("A7: one check fails: not committed", ok(failed).committed, null);
  check("A7: one D1 call: the check statement and the 5 mutations' statements", [failed.cost.calls, failed.cost.statements], [1, 6]);
  check("A7: not one row changed (values, metadata, expirations, stamps)", await snapshot("all_or_nothing_kv_entries", "all_or_nothing"), before);
  const reads = await ops(ns, ["a", "b", "c", "d", "e"].map((key) => ({ op: "get", key })));
  check("A7: every key reads as before", reads.map((x) => ok(x).value), ["a0", "b0", "5", null, null]);

  const done = await op(ns, atomic([["a", a], ["b", b]], mutations));
  const stamp = ok(done).committed;
  check("A7: every check holds: committed", STAMP.test(stamp), true);
  const after = await ops(ns, [getEntry("a"), getEntry("b"), getEntry("c"), getEntry("d"), getEntry("e", { as: "bytes" })]);
  check("A7: every mutation applied", after.map((x) => ok(x).value), ["a1", null, "6", "new", [1, 2, 3]]);
  check("A2: under the commit's stamp", [0, 2, 3, 4].map((i) => ok(after[i]).version), Array(4).fill(stamp));
  check("A11: a put replaces the metadata; put_bytes takes its own", [ok(after[0]).metadata, ok(after[4]).metadata], [null, { e: true }]);
});

scenario("sum, min and max: not an integer or an overflow fails naming the key, and nothing is written (A12)", async () => {
  const ns = { namespace: "sums" };
  const setup = await ops(ns, [
    { op: "put", key: "text", text: "hello" },
    { op: "put", key: "frac", text: "4.5" },
    { op: "put", key: "lead", text: "05" },
    { op: "put", key: "plus", text: "+5" },
    { op: "put", key: "space", text: " 5" },
    { op: "put", key: "empty", text: "" },
    { op: "put", key: "huge", text: "9223372036854775808" },
    { op: "put", key: "max", text: I64_MAX },
    { op: "put", key: "min", text: I64_MIN },
    { op: "put", key: "json5", json: "5" },
    { op: "put", key: "bytes7", bytes: utf8("7") },
    { op: "put", key: "binary", bytes: [0, 1] },
  ]);
  check("setup", setup.map((x) => x.ok), setup.map(() => true));
  const before = await snapshot("sums_kv_entries", "sums");
  const failing = [
    ["text", "sum", "1"],
    ["frac", "sum", "1"],
    ["lead", "sum", "1"],
    ["plus", "sum", "1"],
    ["space", "sum", "1"],
    ["empty", "sum", "1"],
    ["huge", "sum", "-1"],
    ["binary", "sum", "1"],
    ["text", "min", "1"],
    ["frac", "max", "1"],
  ];
  // Each after a valid sum and put on other keys, which must not be written either.
  const r = await ops(ns, failing.map(([key, type, n]) => atomic([], [
    { type: "sum", key: "other", n: "1" },
    { type: "put", key: "also", text: "x" },
    { type, key, n },
  ])));
  failing.forEach(([key, type], i) => {
    check(`A12: ${type} on ${JSON.stringify(before.find((row) => row.key === key)?.value)}: not an integer, naming the key`, r[i].error, notAnInteger(key, type));
  });
  check("A12: each failed in its one D1 call", r.map((x) => x.cost.calls), failing.map(() => 1));
  const o = await ops(ns, [
    atomic([], [{ type: "sum", key: "other", n: "1" }, { type: "sum", key: "max", n: "1" }]),
    atomic([], [{ type: "sum", key: "min", n: "-1" }]),
    atomic([], [{ type: "sum", key: "max", n: I64_MAX }]),
    { op: "increment", key: "max", delta: "1" },
    { op: "increment", key: "min", delta: I64_MIN },
    { op: "increment", key: "text", delta: "1" },
  ]);
  check("A12: i64::MAX + 1 overflows, naming the key", o[0].error, overflow("max", 1));
  check("A12: i64::MIN - 1 overflows", o[1].error, overflow("min", -1));
  check("A12: i64::MAX + i64::MAX overflows", o[2].error, overflow("max", I64_MAX));
  check("A12, A14: increment overflows alike", [o[3].error, o[4].error], [overflow("max", 1), overflow("min", I64_MIN)]);
  check("A12, A14: increment of a value that is not an integer", o[5].error, notAnInteger("text", "sum"));
  check("A12: nothing was written by any of them (values, metadata, expirations, stamps)", await snapshot("sums_kv_entries", "sums"), before);
  check("A12: not even the valid mutations beside them", ok(await op(ns, { op: "get_bulk", keys: ["other", "also"] })).values, { other: null, also: null });

  const fine = await ops(ns, [
    atomic([], [{ type: "sum", key: "max", n: "-1" }, { type: "sum", key: "min", n: "1" }]),
    atomic([], [{ type: "sum", key: "max", n: "1" }]),
    atomic([], [{ type: "sum", key: "json5", n: "1" }, { type: "sum", key: "bytes7", n: "1" }]),
    atomic([], [{ type: "min", key: "m", n: "5" }]),
    atomic([], [{ type: "min", key: "m", n: "3" }]),
    atomic([], [{ type: "min", key: "m", n: "9" }]),
    atomic([], [{ type: "max", key: "m", n: "-10" }]),
    atomic([], [{ type: "max", key: "m", n: "10" }]),
    atomic([], [{ type: "sum", key: "fresh", n: "42" }]),
    { op: "get", key: "max" },
    { op: "get", key: "min" },
    { op: "get", key: "json5" },
    { op: "get", key: "bytes7" },
    { op: "get", key: "m" },
    { op: "get", key: "fresh" },
    { op: "get", key: "fresh", as: "json" },
  ]);
  check("every commit succeeds", fine.slice(0, 9).map((x) => STAMP.test(ok(x).committed)), Array(9).fill(true));
  const values = fine.slice(9).map((x) => ok(x).value);
  check("A12: up to i64::MAX and down to i64::MIN exactly", values.slice(0, 2), [I64_MAX, "-9223372036854775807"]);
  check("A12: a number put as JSON and bytes of digits are counters", values.slice(2, 4), ["6", "8"]);
  check("A12: min and max keep the smaller and the larger, starting from the operand", values[4], "10");
  check("A12: a sum on a missing key stores the decimal text: get text and get json", values.slice(5), ["42", "42"]);
  const m = await ops(ns, [atomic([], [{ type: "min", key: "m2", n: "5" }]), atomic([], [{ type: "min", key: "m2", n: "3" }]), atomic([], [{ type: "min", key: "m2", n: "9" }]), { op: "get", key: "m2" }]);
  check("A12: min of 5, 3, 9", ok(m[3]).value, "3");
});

scenario("a mutation that breaks a KV rule fails as the plain operation does, before any D1 call; a database failure writes nothing (A8)", async () => {
  const ns = { namespace: "atomic_errors" };
  const long = "k".repeat(513);
  const valid = { type: "put", key: "ok", text: "v" };
  // [name, commit, the plain operation that breaks the same rule]
  const cases = [
    ["K4 put key of 513 bytes", atomic([], [valid, { type: "put", key: long, text: "v" }]), { op: "put", key: long, text: "v" }],
    ["K2 put empty key", atomic([], [valid, { type: "put", key: "", text: "v" }]), { op: "put", key: "", text: "v" }],
    ["K3 delete ..", atomic([], [valid, { type: "delete", key: ".." }]), { op: "delete", key: ".." }],
    ["K4 put_bytes key", atomic([], [valid, { type: "put_bytes", key: long, bytes: [1] }]), { op: "put", key: long, bytes: [1] }],
    ["K6 value over 25 MiB", atomic([], [valid, { type: "put", key: "big", repeat: 26_214_401 }]), { op: "put", key: "big", repeat: 26_214_401 }],
    ["K11 metadata over 1024 bytes", atomic([], [valid, { type: "put", key: "m", text: "v", metadata: "x".repeat(1100) }]), { op: "put", key: "m", text: "v", metadata: "x".repeat(1100) }],
    ["K14 expiration in the past", atomic([], [valid, { type: "put", key: "e", text: "v", expiration: 1000 }]), { op: "put", key: "e", text: "v", expiration: 1000 }],
    ["K14 sum_with ttl 0", atomic([], [valid, { type: "sum", key: "t", n: "1", expiration_ttl: 0 }]), { op: "put", key: "t", text: "v", expiration_ttl: 0 }],
    ["K11 sum_with metadata over 1024 bytes", atomic([], [valid, { type: "max", key: "t", n: "1", metadata: "x".repeat(1100) }]), { op: "put", key: "t", text: "v", metadata: "x".repeat(1100) }],
    ["K2 check of an empty key", atomic([["", null]], [valid]), { op: "get", key: "" }],
    ["K4 check of a key of 513 bytes", atomic([[long, null]], [valid]), { op: "get", key: long }],
    ["K4 increment", { op: "increment", key: long, delta: "1" }, { op: "put", key: long, text: "v" }],
    ["K14 increment ttl 0", { op: "increment", key: "i", delta: "1", expiration_ttl: 0 }, { op: "put", key: "i", text: "v", expiration_ttl: 0 }],
  ];
  const r = await ops(ns, cases.flatMap(([, commit, plain]) => [commit, plain]));
  cases.forEach(([name], i) => {
    const [commit, plain] = [r[2 * i], r[2 * i + 1]];
    check(`${name}: the plain operation's error`, [commit.ok, commit.error], [false, plain.error]);
    check(`${name}: refused before D1 (0 calls)`, commit.cost.calls, 0);
  });
  check("the valid put beside them was never written", ok(await op(ns, { op: "get", key: "ok" })).value, null);
  const refused = await ops(ns, [
    atomic([["ok", "0123456789ABCDEF0123456789ABCDEF"]], [valid]),
    atomic([["ok", "0123"]], [valid]),
  ]);
  check("A1: a stamp in capitals does not parse", refused[0].error, 'database error: bad test request: "0123456789ABCDEF0123456789ABCDEF" is not a versionstamp: expected 32 lowercase hex digits');
  check("A1: nor a short one; neither reaches D1", [refused[1].error?.includes("is not a versionstamp"), refused[0].cost.calls, refused[1].cost.calls], [true, 0, 0]);

  // A database failure mid-batch: a trigger of the user's refuses one key.
  ok(await op(ns, { op: "put", key: "a", text: "before" }));
  await sql("DB", `CREATE TRIGGER "atomic_errors$refuse" BEFORE INSERT ON atomic_errors_kv_entries WHEN NEW.key = 'refused' BEGIN SELECT RAISE(ABORT, 'refused by hand'); END`);
  const before = await snapshot("atomic_errors_kv_entries", "atomic_errors");
  const f = await ops(ns, [
    { op: "put", key: "refused", text: "x" },
    atomic([], [{ type: "put", key: "a", text: "after" }, { type: "sum", key: "n", n: "5" }, { type: "put", key: "refused", text: "x" }]),
    atomic([["a", null], ["n", null]], [{ type: "delete", key: "a" }, { type: "put", key: "refused", text: "x" }]),
    { op: "increment", key: "refused", delta: "1" },
    { op: "get", key: "a" },
    { op: "get", key: "n" },
    { op: "get", key: "refused" },
  ]);
  check("the trigger refuses a plain put", [f[0].ok, f[0].error?.includes("refused by hand")], [false, true]);
  check("A8: a commit the database fails is an error with the database's text", [f[1].ok, f[1].error?.includes("refused by hand"), f[1].cost.calls], [false, true, 1]);
  check("A6, A8: a failing check comes first: not committed, not an error", [f[2].ok, f[2].result?.committed], [true, null]);
  check("A8: an increment the database fails is an error", [f[3].ok, f[3].error?.includes("refused by hand")], [false, true]);
  check("A8: nothing was written", [ok(f[4]).value, ok(f[5]).value, ok(f[6]).value], ["before", null, null]);
  check("A8: not one row changed", await snapshot("atomic_errors_kv_entries", "atomic_errors"), before);
  await sql("DB", `DROP TRIGGER "atomic_errors$refuse"`);
});

scenario("mutations apply in order; a key may appear more than once (A9)", async () => {
  const ns = { namespace: "atomic_order" };
  ok(await op(ns, { op: "put", key: "e", text: "existed" }));
  const r = await ops(ns, [
    atomic([], [{ type: "put", key: "k", text: "a" }, { type: "put", key: "k", text: "b" }]),
    atomic([], [{ type: "sum", key: "n", n: "1" }, { type: "sum", key: "n", n: "2" }, { type: "sum", key: "n", n: "3" }]),
    atomic([], [{ type: "put", key: "x", json: "5" }, { type: "sum", key: "x", n: "1" }]),
    atomic([], [{ type: "put", key: "d", text: "v" }, { type: "delete", key: "d" }]),
    atomic([], [{ type: "delete", key: "e" }, { type: "put", key: "e", text: "back" }]),
    atomic([], [{ type: "sum", key: "m", n: "10" }, { type: "min", key: "m", n: "3" }, { type: "max", key: "m", n: "7" }]),
    atomic([], [{ type: "put", key: "j", json: '{"a":1}', metadata: { first: true } }, { type: "put", key: "j", text: "last" }]),
    atomic([], [{ type: "sum", key: "s", n: "1" }, { type: "put", key: "s", text: "text" }]),
  ]);
  check("every commit succeeds", r.map((x) => STAMP.test(ok(x).committed)), r.map(() => true));
  const g = await ops(ns, ["k", "n", "x", "d", "e", "m", "j", "s"].map((key) => getEntry(key)));
  check("A9: last put wins; sums add up; a put then a sum; put then delete; delete then put; sum, min, max; a later put replaces the metadata; a sum then a put", g.map((x) => ok(x).value), ["b", "6", "6", null, "back", "7", "last", "text"]);
  check("A9: the last put's metadata (none)", ok(g[6]).metadata, null);
  // A key written again in the same commit costs one statement more: its version is cleared
  // first, so that the rewrite, which sets the same stamp, is not taken for a write by hand.
  check("one statement per mutation, and one per rewrite of a key", r.map((x) => x.cost.statements), [3, 5, 3, 2, 2, 5, 3, 3]);
});

scenario("100 checks and 100 mutations in one commit; more is refused before sending (A10)", async () => {
  const ns = { namespace: "atomic_limits" };
  const keys = Array.from({ length: 100 }, (_, i) => `k${String(i).padStart(3, "0")}`);
  ok(await op(ns, { op: "put", key: "warm", text: "" }));
  const first = await op(ns, atomic([], keys.map((key) => ({ type: "put", key, text: "v1" }))));
  cost("atomic commit: 100 puts", first);
  const stamp = ok(first).committed;
  check("100 puts: one call of 100 statements", [STAMP.test(stamp), first.cost.calls, first.cost.statements, first.cost.rows_written], [true, 1, 100, 100]);
  const full = await op(ns, atomic(keys.map((key) => [key, stamp]), keys.map((key, i) => (i % 2 ? { type: "put", key, text: "v2" } : { type: "sum", key: `n${key}`, n: "1" }))));
  cost("atomic commit: 100 checks + 100 mutations (50 puts, 50 sums)", full);
  const second = ok(full).committed;
  check("A10: 100 checks and 100 mutations: committed in one call of 101 statements", [STAMP.test(second), full.cost.calls, full.cost.statements], [true, 1, 101]);
  const counted = await sql("DB", "SELECT count(*) AS n FROM atomic_limits_kv_entries WHERE namespace = 'atomic_limits' AND version = ?1", [second]);
  check("A10: all 100 mutations applied under the commit's stamp", counted.rows[0].n, 100);
  const stale = await op(ns, atomic(keys.map((key) => [key, stamp]), [{ type: "put", key: "after", text: "x" }]));
  check("A10: 100 checks, 50 of them now stale: not committed", [ok(stale).committed, stale.cost.calls], [null, 1]);
  const tooMany = await ops(ns, [
    atomic([...keys, "k100"].map((key) => [key, null]), [{ type: "put", key: "after", text: "x" }]),
    atomic([], [...keys, "k100"].map((key) => ({ type: "delete", key }))),
  ]);
  check("A10: 101 checks: refused", tooMany[0].error, "an atomic commit may have at most 100 checks, this one has 101; nothing was written");
  check("A10: 101 mutations: refused", tooMany[1].error, "an atomic commit may have at most 100 mutations, this one has 101; nothing was written");
  check("A10: refused before sending (0 calls)", tooMany.map((x) => x.cost.calls), [0, 0]);
  check("nothing written", ok(await op(ns, { op: "get", key: "after" })).value, null);
});

scenario("large values in an atomic commit, stored in chunks (A10, A12, A13, K9)", async () => {
  const ns = { namespace: "atomic_large" };
  const chunks = async (key) => (await sql("DB", 'SELECT count(*) AS n FROM "atomic_large_kv_entries$chunks" WHERE namespace = ?1 AND key = ?2', ["atomic_large", key])).rows[0].n;
  ok(await op(ns, { op: "put", key: "warm", text: "" }));
  const put = await op(ns, atomic([["big", null]], [{ type: "put", key: "big", repeat: 3_000_000 }, { type: "put", key: "small", text: "s" }, { type: "sum", key: "n", n: "1" }]));
  cost("atomic commit: check + 3,000,000-byte put (in chunks) + put + sum", put);
  const stamp = ok(put).committed;
  check("A10: a commit with a 3,000,000-byte value: committed in one call", [STAMP.test(stamp), put.cost.calls], [true, 1]);
  const r = await ops(ns, [getEntry("big", { summary: true }), getEntry("small"), getEntry("n")]);
  check("A10: the value round-trips, under the commit's stamp", ok(r[0]), { length: 3_000_000, same_byte: 120, version: stamp });
  check("A2: the other mutations share the stamp", [ok(r[1]).version, ok(r[2]).version], [stamp, stamp]);
  check("K9: stored in 2 chunks", await chunks("big"), 2);
  const failed = await op(ns, atomic([["big", "f".repeat(32)]], [{ type: "put", key: "big", repeat: 2_500_000 }]));
  check("A7: a failed check on a large put: not committed", ok(failed).committed, null);
  check("A7: the old value and its chunks stay", [ok(await op(ns, getEntry("big", { summary: true }))), await chunks("big")], [{ length: 3_000_000, same_byte: 120, version: stamp }, 2]);
  const sum = await op(ns, atomic([], [{ type: "sum", key: "big", n: "1" }]));
  check("A12: a sum on a value in chunks: not an integer", sum.error, notAnInteger("big", "sum"));
  const small = await op(ns, atomic([["big", stamp]], [{ type: "put", key: "big", text: "small now" }]));
  check("the large value replaced in a commit", [STAMP.test(ok(small).committed), ok(await op(ns, { op: "get", key: "big" })).value], [true, "small now"]);
  check("K9: its chunks are gone", await chunks("big"), 0);

  // A12, A13: a sum over an expired value in chunks starts from the operand and drops the chunks.
  ok(await op(ns, { op: "put", key: "long", repeat: 3000, expiration_ttl: 1 }));
  check("a 3000-byte value is in chunks", await chunks("long"), 1);
  await sleep(1200);
  const restarted = await op(ns, atomic([["long", null]], [{ type: "sum", key: "long", n: "4" }]));
  check("A13: a sum over an expired value in chunks starts from the operand", [STAMP.test(ok(restarted).committed), ok(await op(ns, { op: "get", key: "long" })).value], [true, "4"]);
  check("K9: and its chunks are gone", await chunks("long"), 0);

  const over = await op(ns, atomic([], [{ type: "put", key: "a", repeat: 17_000_000 }, { type: "put", key: "b", repeat: 17_000_000 }]));
  check("A10: more than 32 MiB in one commit: refused before sending", [over.error, over.cost.calls], ["an atomic commit may have at most 33554432 bytes, this one has 34000002; nothing was written", 0]);
});

scenario("no lost update: concurrent compare-and-swap loops, sums and increments from parallel requests (A2, A6, A7, A14)", async () => {
  const ns = { namespace: "race" };
  const CLIENTS = 8;
  const ROUNDS = 25;
  ok(await op(ns, { op: "put", key: "warm", text: "" }));
  const stamps = [];
  const increments = [];
  let retries = 0;
  // get the entry, then put value + 1 only if nobody wrote the key since; again if somebody did.
  const casClient = async () => {
    for (let i = 0; i < ROUNDS; i++) {
      for (;;) {
        const entry = ok(await op(ns, getEntry("cas", { as: "json" })));
        const value = entry.value === null ? 0 : JSON.parse(entry.value);
        const r = await op(ns, atomic([["cas", entry.version]], [{ type: "put", key: "cas", json: String(value + 1) }]));
        if (ok(r).committed !== null) {
          stamps.push(ok(r).committed);
          break;
        }
        retries++;
      }
    }
  };
  const sumClient = async (c) => {
    for (let i = 0; i < ROUNDS; i++) {
      const r = await op(ns, atomic([], [{ type: "sum", key: "sum", n: "1" }, { type: "sum", key: `sum:${c}`, n: "1" }]));
      stamps.push(ok(r).committed);
    }
  };
  const incrementClient = async () => {
    for (let i = 0; i < ROUNDS; i++) increments.push(Number(ok(await op(ns, { op: "increment", key: "inc", delta: "1" })).value));
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => [casClient(), sumClient(c), incrementClient()]).flat());
  const total = CLIENTS * ROUNDS;
  console.log(`  ${3 * CLIENTS} clients, ${3 * total} updates in ${Date.now() - started} ms; ${retries} compare-and-swap retries`);
  const r = await ops(ns, [{ op: "get", key: "cas" }, { op: "get", key: "sum" }, { op: "get", key: "inc" }, ...Array.from({ length: CLIENTS }, (_, c) => ({ op: "get", key: `sum:${c}` }))]);
  check(`A6, A7: ${total} compare-and-swap increments from ${CLIENTS} clients: none lost`, ok(r[0]).value, String(total));
  check(`A7: ${total} sums from ${CLIENTS} clients: none lost`, ok(r[1]).value, String(total));
  check(`A7: each client's own counter, summed in the same commits: ${ROUNDS} each`, r.slice(3).map((x) => ok(x).value), Array(CLIENTS).fill(String(ROUNDS)));
  check(`A14: ${total} increments: none lost`, ok(r[2]).value, String(total));
  check("A14: every increment returned a different value, 1 to the total", [...increments].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i + 1));
  check("A2: every commit returned its own stamp", new Set(stamps).size, 2 * total);
});

// ---------------------------------------------------------------- typed indexes

// Rules I1-I12 as in docs/indexes.md. Typed look-ups need Rust types, so the Worker declares
// typed namespaces with indexes (worker/src/indexed.rs) and operations name one by `fixture`:
// "sessions" (4 indexes: user_id u64, email String, admin bool, team Option<u32>), "one_index"
// (user_id) and "no_index" share the table idx_kv; "late" (user_id) has a table of its own.

/** The untyped namespace of the fixture "sessions": the same rows, through D1Namespace. */
const IDX = { namespace: "idx_sessions", table: "idx_kv" };
const MAX_EXACT = 2 ** 53;

/** A fixture's value as JSON text: every field of the Worker's types, `fields` over defaults. */
const session = (fields = {}) => JSON.stringify({ user_id: 0, email: "", admin: false, team: null, note: "", ...fields });
const putSession = (fixture, key, fields, extra = {}) => ({ op: "put_session", fixture, key, json: session(fields), ...extra });
const find = (fixture, field, value, extra = {}) => ({ op: "find", fixture, field, value, ...extra });
const deleteWhere = (fixture, field, value) => ({ op: "delete_where", fixture, field, value });
/** The keys of a page. */
const keysOf = (r) => ok(r).entries.map((e) => e.key);
/** The rows of idx_sessions whose user_id the index holds as `userId`, counted through that index by hand. */
async function indexed(userId) {
  const r = await sql("DB", `SELECT count(*) AS n FROM idx_kv INDEXED BY "${await indexName("user_id")}" WHERE namespace = 'idx_sessions' AND ${indexExpr("user_id")} = ?1`, [userId]);
  return r.rows[0].n;
}
/** The expression d1ns indexes for `field` (d1ns-runtime/src/sql.rs, `index_expr`). */
const indexExpr = (field) =>
  `(CASE WHEN typeof(value) != 'text' THEN NULL WHEN chunks IS NULL THEN CASE WHEN json_valid(value) THEN json_extract(value, '$."${field}"') END WHEN substr(value, 1, 1) = '#' AND json_valid(substr(value, 2)) THEN json_extract(substr(value, 2), '$."${field}"') END)`;
/** The name of idx_sessions' index on `field`: `{table}$index${namespace}${field}$` and a hash. */
async function indexName(field) {
  const r = await sql("DB", "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE ?1", [`idx_kv$index$idx_sessions$${field}$%`]);
  return r.rows[0].name;
}
const chunksOf = async (key) => (await sql("DB", 'SELECT count(*) AS n FROM "idx_kv$chunks" WHERE namespace = ?1 AND key = ?2', ["idx_sessions", key])).rows[0].n;

scenario("typed indexes: the first look-up creates the indexes with the table; a look-up returns the matching entries in key order with value, metadata, expiration and version (I4, I12)", async () => {
  const first = await ops({}, [find("sessions", "user_id", 7), find("one_index", "user_id", 7), putSession("no_index", "warm", { user_id: 7 })]);
  cost("find, a namespace's first operation (4 indexes)", first[0], " + creating the table and its 4 indexes");
  check("the first operation of a namespace with 4 indexes sends the table's statements, its 4 index statements and the look-up", [first[0].cost.calls, first[0].cost.statements], [1, schemaStatements + 4 + 1]);
  check("another namespace with 1 index in the same table: the table's statements again (IF NOT EXISTS) and its own index", first[1].cost.statements, schemaStatements + 1 + 1);
  check("a namespace without indexes in that table: known by its table alone, so the table's statements once more, no index", first[2].cost.statements, schemaStatements + 1);
  const names = (await sql("DB", "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'idx_kv' AND name LIKE '%$index$%' ORDER BY name")).rows.map((r) => r.name);
  check("I12: one index per namespace and field, named {table}$index${namespace}${field}$ and a hash of the two", names.map((n) => n.replace(/\$[0-9a-f]{8}$/, "")), ["admin", "email", "team", "user_id"].map((f) => `idx_kv$index$idx_sessions$${f}`).concat(["idx_kv$index$idx_one$user_id"]).sort());

  const nowS = Math.floor(Date.now() / 1000);
  const put = await ops(IDX, [
    putSession("sessions", "c", { user_id: 7, email: "c@example.com", team: 3 }, { metadata: { agent: "c" }, expiration_ttl: 600 }),
    putSession("sessions", "a", { user_id: 7, email: "a@example.com", admin: true }, { metadata: { agent: "a" } }),
    putSession("sessions", "b", { user_id: 8, email: "b@example.com", team: 3 }),
    putSession("sessions", "d", { user_id: 7, email: "d@example.com", note: "d's note" }),
    // The same value of the field in two other namespaces of the table.
    putSession("one_index", "a2", { user_id: 7 }),
    putSession("no_index", "a3", { user_id: 7 }),
    getEntry("a"),
    getEntry("c"),
    getEntry("d"),
  ]);
  check("every put succeeds", put.map((x) => x.ok), put.map(() => true));
  ok(await op({ namespace: "idx_other", table: "idx_kv" }, { op: "put", key: "a4", json: session({ user_id: 7 }) }));
  const r = await ops(IDX, [
    find("sessions", "user_id", 7),
    find("sessions", "email", "b@example.com"),
    find("sessions", "admin", true),
    find("sessions", "admin", false),
    find("sessions", "team", 3),
    find("sessions", "user_id", 9),
    find("one_index", "user_id", 7),
  ]);
  cost("find, page of 3 entries (among 4)", r[0]);
  cost("find, no match", r[5]);
  check("I4: the live entries whose field equals the value, in key order", keysOf(r[0]), ["a", "c", "d"]);
  const [a, c, d] = ok(r[0]).entries;
  check("I4: each with its value", [JSON.parse(a.value), JSON.parse(d.value)], [
    { user_id: 7, email: "a@example.com", admin: true, team: null, note: "" },
    { user_id: 7, email: "d@example.com", admin: false, team: null, note: "d's note" },
  ]);
  check("I4: its metadata", [a.metadata, c.metadata, d.metadata], [{ agent: "a" }, { agent: "c" }, null]);
  check("I4: its expiration in seconds", [a.expiration, c.expiration > nowS + 590 && c.expiration <= nowS + 601, d.expiration], [null, true, null]);
  check("I4: its versionstamp, the one a get returns (A1)", [a.version, c.version, d.version], [ok(put[6]).version, ok(put[7]).version, ok(put[8]).version]);
  check("I4: a complete page: list_complete, no cursor", [ok(r[0]).list_complete, ok(r[0]).cursor], [true, null]);
  check("I4: one call of one statement, nothing written", r[0].cost, { ...r[0].cost, calls: 1, statements: 1, rows_written: 0 });
  check("I3: a String index", keysOf(r[1]), ["b"]);
  check("I3: a bool index, true", keysOf(r[2]), ["a"]);
  check("I3: a bool index, false", keysOf(r[3]), ["b", "c", "d"]);
  check("I3: an Option<u32> index", keysOf(r[4]), ["b", "c"]);
  check("no match: an empty, complete page", ok(r[5]), { entries: [], list_complete: true, cursor: null });
  check("I4: another namespace's index finds its own entry only", keysOf(r[6]), ["a2"]);
  const team = await sql("DB", `SELECT count(*) AS n FROM idx_kv INDEXED BY "${await indexName("team")}" WHERE namespace = 'idx_sessions' AND ${indexExpr("team")} IS NOT NULL`);
  check("I3: None is not in the index (2 of the 4 entries have a team)", team.rows[0].n, 2);

  const bad = await ops(IDX, [
    find("sessions", "user_id", 7, { limit: 1001 }),
    find("sessions", "user_id", 7, { cursor: "not a cursor!" }),
    find("no_index", "user_id", 7),
    find("sessions", "user_id", "seven"),
  ]);
  check("K28: limit 1001, as list", bad[0].error, "KV GET failed: 400 Invalid key_count_limit of 1001. Please specify an integer less than 1000.");
  check("K30: a malformed cursor, as list", bad[1].error?.startsWith("KV GET failed: 400 Invalid cursor"), true);
  check("the Worker refuses a look-up its fixture has no index for, and a value of the wrong type", [bad[2].ok, bad[3].ok], [false, false]);
  check("refused before D1 (0 calls)", bad.map((x) => x.cost.calls), [0, 0, 0, 0]);
});

scenario("typed indexes: 25 matches among 50 entries, in pages of 10 by limit and cursor (I4)", async () => {
  const keys = Array.from({ length: 50 }, (_, i) => `page:${String(i).padStart(2, "0")}`);
  const puts = await ops(IDX, keys.map((key, i) => putSession("sessions", key, { user_id: 20 + (i % 2) })));
  check("puts succeed", puts.every((x) => x.ok), true);
  const pages = [];
  let cursor;
  do {
    const r = await op(IDX, find("sessions", "user_id", 20, { limit: 10, ...(cursor ? { cursor } : {}) }));
    if (pages.length === 1) cost("find, page of 10 after a cursor (among 50)", r);
    pages.push(ok(r));
    cursor = ok(r).cursor;
    if (pages.length > 5) throw new Error("find does not end");
  } while (cursor);
  check("I4: pages of 10, 10, 5", pages.map((p) => p.entries.length), [10, 10, 5]);
  check("I4: list_complete only on the last page", pages.map((p) => p.list_complete), [false, false, true]);
  check("I4: a cursor on every page but the last", pages.map((p) => p.cursor !== null), [true, true, false]);
  check("I4: every match exactly once, in key order", pages.flatMap((p) => p.entries.map((e) => e.key)), keys.filter((_, i) => i % 2 === 0));
  const all = ok(await op(IDX, find("sessions", "user_id", 21)));
  check("I4: without a limit, up to 1000: all 25 in one page", [all.entries.length, all.list_complete], [25, true]);
  check("I4: limit 0 means the default", ok(await op(IDX, find("sessions", "user_id", 21, { limit: 0 }))).entries.length, 25);
});

scenario("typed indexes: expired entries are never returned, nor other namespaces' entries in the same table (I4)", async () => {
  const r = await ops(IDX, [
    putSession("sessions", "short", { user_id: 3 }, { expiration_ttl: 1 }),
    putSession("sessions", "long", { user_id: 3 }),
    putSession("one_index", "short", { user_id: 3 }),
    putSession("one_index", "x", { user_id: 3 }),
    putSession("no_index", "y", { user_id: 3 }),
    find("sessions", "user_id", 3),
    find("one_index", "user_id", 3),
  ]);
  check("every operation succeeds", r.map((x) => x.ok), r.map(() => true));
  check("I4: before the expiration: both", keysOf(r[5]), ["long", "short"]);
  check("I4: the namespace with the same key and value in the same table finds its own", keysOf(r[6]), ["short", "x"]);
  await sleep(1200);
  const after = await ops(IDX, [find("sessions", "user_id", 3), { op: "get", key: "short" }, find("one_index", "user_id", 3)], { expired: 1 });
  cost("find, page of 1 among an expired match", after[0]);
  check("I4: 1 s TTL: not returned after 1.2 s", keysOf(after[0]), ["long"]);
  check("I4: as get, which sees nothing either", ok(after[1]).value, null);
  check("K31a: a look-up that meets an expired entry writes nothing", after[0].cost.rows_written, 0);
  check("the other namespace's entry of the same key did not expire", keysOf(after[2]), ["short", "x"]);
  const rows = await sql("DB", "SELECT namespace, key FROM idx_kv WHERE key = 'short' ORDER BY namespace");
  check("the expired row stays until purged (K31a)", rows.rows, [{ namespace: "idx_one", key: "short" }, { namespace: "idx_sessions", key: "short" }]);
});

scenario("typed indexes: rows read by a look-up page of 1, 10 and 100 among 3,100 entries (I5)", async () => {
  // 3,100 keys in one namespace: every 31st is user 500 (100 of them), 10 more are user 501 and one
  // is user 502; the rest have 97 other values. A look-up that scanned would read them all.
  const N = 3100;
  const userOf = (i) => (i % 31 === 0 ? 500 : i % 31 === 1 && i < 310 ? 501 : i === 2 ? 502 : 1000 + (i % 97));
  const keys = Array.from({ length: N }, (_, i) => `load:${String(i).padStart(5, "0")}`);
  const started = Date.now();
  for (let i = 0; i < N; i += 250) {
    const r = await ops(IDX, keys.slice(i, i + 250).map((key, j) => putSession("sessions", key, { user_id: userOf(i + j), email: `${key}@load`, team: (i + j) % 7 })));
    if (!r.every((x) => x.ok)) throw new Error(`put failed: ${r.find((x) => !x.ok).error}`);
  }
  console.log(`  ${N} typed puts (4 indexes each) in ${Date.now() - started} ms`);
  const expected = (u) => keys.filter((_, i) => userOf(i) === u);
  const r = await ops(IDX, [
    find("sessions", "user_id", 502, { limit: 1 }),
    find("sessions", "user_id", 500, { limit: 1 }),
    find("sessions", "user_id", 500, { limit: 10 }),
    find("sessions", "user_id", 500, { limit: 100 }),
    find("sessions", "user_id", 501),
    find("sessions", "user_id", 499),
    find("sessions", "email", "load:00031@load"),
  ]);
  const labels = ["find, page of 1 (the only match)", "find, page of 1 (of 100 matches)", "find, page of 10 (of 100 matches)", "find, page of 100 (all 100 matches)", "find, page of 10 (all 10 matches)", "find, no match"];
  labels.forEach((label, i) => cost(`${label}, among ${N.toLocaleString("en-US")} entries`, r[i]));
  check("the pages", r.slice(0, 5).map(keysOf), [expected(502), expected(500).slice(0, 1), expected(500).slice(0, 10), expected(500), expected(501)]);
  check("a String index among them", keysOf(r[6]), ["load:00031"]);
  const figures = r.slice(0, 7).map((x) => `${ok(x).entries.length} -> ${x.cost.rows_read}`);
  console.log(`  entries returned -> D1 rows_read: ${figures.join(", ")}`);
  // I5: the page's entries and at most one more row, however many entries the namespace has.
  for (const x of r) {
    const n = ok(x).entries.length;
    check(`I5: a page of ${n} reads at most ${n} + 1 rows, among ${N} (read ${x.cost.rows_read})`, x.cost.rows_read <= n + 1, true);
  }
  // For comparison, the same look-up by hand without the index: every row of the namespace.
  const scan = await sql("DB", "SELECT count(*) AS n FROM idx_kv NOT INDEXED WHERE namespace = 'idx_sessions' AND json_extract(value, '$.user_id') = 500");
  costRows.push({ label: `for comparison: count of user 500 by hand, NOT INDEXED, among ${N.toLocaleString("en-US")} entries (/sql)`, calls: 1, statements: 1, rows_read: scan.rows_read, rows_written: scan.rows_written });
  check("by hand without the index: the same 100, reading every row of the namespace", [scan.rows[0].n, scan.rows_read >= N], [100, true]);

  const d = await ops(IDX, [deleteWhere("sessions", "user_id", 502), deleteWhere("sessions", "user_id", 501), deleteWhere("sessions", "user_id", 500)]);
  cost("delete_where, 1 entry (4 indexes)", d[0]);
  cost("delete_where, 10 entries (4 indexes)", d[1]);
  cost("delete_where, 100 entries (4 indexes)", d[2]);
  check("I6: delete_where counts 1, 10, 100", d.map((x) => ok(x).removed), [1, 10, 100]);
  check("I6: each is one call: the delete and the count of its changes", d.map((x) => [x.cost.calls, x.cost.statements]), [[1, 2], [1, 2], [1, 2]]);
  check("I6: delete_where of n entries reads at most 2n + 1 rows", d.map((x) => x.cost.rows_read <= 2 * ok(x).removed + 1), [true, true, true]);
  const gone = await ops(IDX, [find("sessions", "user_id", 500), find("sessions", "user_id", 501), { op: "get", key: keys[0] }, { op: "get", key: keys[3] }]);
  check("I6: then not found, by the index or by key; a key of another value stays", [keysOf(gone[0]), keysOf(gone[1]), ok(gone[2]).value, ok(gone[3]).value !== null], [[], [], null, true]);
});

scenario("typed indexes: values over 1 KiB and over 2 MB are found and returned whole (I5, I11)", async () => {
  const r = await ops(IDX, [
    putSession("sessions", "long", { user_id: 40, email: "long@example.com" }, { note_repeat: 5000 }),
    putSession("sessions", "huge", { user_id: 40, email: "huge@example.com" }, { note_repeat: 3_000_000 }),
    putSession("sessions", "small", { user_id: 40, email: "small@example.com" }),
    find("sessions", "user_id", 40, { summary: true }),
    find("sessions", "email", "huge@example.com", { summary: true }),
  ]);
  cost("put_session, 5,000-byte note (in chunks, 4 indexes)", r[0]);
  cost("put_session, 3,000,000-byte note (in chunks, 4 indexes)", r[1]);
  cost("find, page of 3: 5,000 bytes, 3,000,000 bytes (in chunks) and a small value", r[3]);
  check("every operation succeeds", r.map((x) => x.ok), r.map(() => true));
  const page = ok(r[3]);
  check("I11: values in chunks are found, in key order", page.entries.map((e) => e.key), ["huge", "long", "small"]);
  check("I5: returned whole", page.entries.map((e) => e.note), [{ length: 3_000_000, same_byte: 110 }, { length: 5000, same_byte: 110 }, { length: 0, same_byte: null }]);
  check("I5: with their other fields", page.entries.map((e) => JSON.parse(e.value).email), ["huge@example.com", "long@example.com", "small@example.com"]);
  // Values up to 128 KiB come in the page's own statement; longer ones in a further call, so
  // that no D1 result passes 50 MB (the 3,000,000-byte one here).
  check("I5: the page in one statement, the value over 128 KiB in one more call", [r[3].cost.calls, r[3].cost.statements], [2, 2]);
  check("I11: a String index finds a value in chunks", ok(r[4]).entries.map((e) => [e.key, e.note.length]), [["huge", 3_000_000]]);
  check("K9: stored in chunks (1 and 2)", [await chunksOf("long"), await chunksOf("huge")], [1, 2]);
  const moved = await ops(IDX, [
    putSession("sessions", "huge", { user_id: 41, email: "huge@example.com" }, { note_repeat: 4000 }),
    find("sessions", "user_id", 40, { summary: true }),
    find("sessions", "user_id", 41, { summary: true }),
  ]);
  check("I7: replaced by a shorter value of another user: found by its new field only", [keysOf(moved[1]), ok(moved[2]).entries.map((e) => [e.key, e.note.length])], [["long", "small"], [["huge", 4000]]]);
  check("K9: its old chunks are gone", await chunksOf("huge"), 1);
});

scenario("typed indexes: delete_where removes every live match, with its chunks, in one call, and counts them (I6)", async () => {
  const r = await ops(IDX, [
    putSession("sessions", "del:a", { user_id: 60 }),
    putSession("sessions", "del:b", { user_id: 60 }, { note_repeat: 10_000 }),
    putSession("sessions", "del:c", { user_id: 61 }),
    putSession("sessions", "del:gone", { user_id: 60 }, { expiration_ttl: 1 }),
    putSession("one_index", "del:a", { user_id: 60 }),
  ]);
  check("puts succeed", r.map((x) => x.ok), r.map(() => true));
  check("K9: del:b is in chunks", await chunksOf("del:b"), 1);
  await sleep(1200);
  const d = await op(IDX, deleteWhere("sessions", "user_id", 60));
  cost("delete_where, 2 entries, one of them in chunks (4 indexes)", d);
  check("I6: removes the 2 live matches and says so", ok(d).removed, 2);
  check("I6: one call: the delete and the count of its changes", [d.cost.calls, d.cost.statements], [1, 2]);
  const after = await ops(IDX, [find("sessions", "user_id", 60), find("sessions", "user_id", 61), find("one_index", "user_id", 60), { op: "get", key: "del:b" }, deleteWhere("sessions", "user_id", 60)], { expired: 1 });
  check("I6: none is found any more", keysOf(after[0]), []);
  check("I6: another value's entry stays", keysOf(after[1]), ["del:c"]);
  check("I6: another namespace's entry with the value stays", keysOf(after[2]), ["del:a"]);
  check("I6: gone by key too", ok(after[3]).value, null);
  check("I6: a second delete_where removes nothing", ok(after[4]).removed, 0);
  check("I6: the chunks went with their entry", await chunksOf("del:b"), 0);
  const rows = await sql("DB", "SELECT key FROM idx_kv WHERE namespace = 'idx_sessions' AND key LIKE 'del:%' ORDER BY key");
  check("I6: the expired match was not live, so not counted: it stays until purged (K31a)", rows.rows.map((x) => x.key), ["del:c", "del:gone"]);
});

scenario("typed indexes: atomic commits, deletes, UPDATEs by hand and purge_expired keep the index exact (I7)", async () => {
  const setup = await ops(IDX, [putSession("sessions", "mv:a", { user_id: 70 }), getEntry("mv:a")]);
  const version = ok(setup[1]).version;
  const c = await ops(IDX, [
    // An atomic commit moves mv:a to user 71 and adds mv:b as user 70, together.
    atomic([["mv:a", version]], [{ type: "put", key: "mv:a", json: session({ user_id: 71 }) }, { type: "put", key: "mv:b", json: session({ user_id: 70 }) }]),
    find("sessions", "user_id", 70),
    find("sessions", "user_id", 71),
    // The same check again is stale: nothing moves.
    atomic([["mv:a", version]], [{ type: "put", key: "mv:a", json: session({ user_id: 70 }) }, { type: "delete", key: "mv:b" }]),
    find("sessions", "user_id", 70),
    find("sessions", "user_id", 71),
    { op: "delete", key: "mv:b" },
    find("sessions", "user_id", 70),
  ]);
  check("I7: the commit holds", STAMP.test(ok(c[0]).committed), true);
  check("I7: it moved mv:a from one value to another and added mv:b, together", [keysOf(c[1]), keysOf(c[2])], [["mv:b"], ["mv:a"]]);
  check("I7: a failed commit moves nothing", [ok(c[3]).committed, keysOf(c[4]), keysOf(c[5])], [null, ["mv:b"], ["mv:a"]]);
  check("I7: a delete leaves the index", keysOf(c[7]), []);
  const stamp = ok(await op(IDX, getEntry("mv:a"))).version;
  await sql("DB", "UPDATE idx_kv SET value = json_set(value, '$.user_id', 72) WHERE namespace = 'idx_sessions' AND key = 'mv:a'");
  const hand = await ops(IDX, [find("sessions", "user_id", 71), find("sessions", "user_id", 72)]);
  check("I7: an UPDATE by hand in SQL changes what is found", [keysOf(hand[0]), keysOf(hand[1])], [[], ["mv:a"]]);
  const handEntry = ok(hand[1]).entries[0];
  check("I7: found with its new value and a new stamp (the write by hand is seen)", [JSON.parse(handEntry.value).user_id, STAMP.test(handEntry.version) && handEntry.version !== stamp], [72, true]);

  ok(await op(IDX, putSession("sessions", "mv:t", { user_id: 73 }, { expiration_ttl: 1 })));
  await sleep(1200);
  check("I7: expired, not returned, still in the index until purged", [keysOf(await op(IDX, find("sessions", "user_id", 73), { expired: 1 })), await indexed(73)], [[], 1]);
  const expired = (await sql("DB", "SELECT count(*) AS n FROM idx_kv WHERE expiration IS NOT NULL AND expiration <= ?1", [Date.now()])).rows[0].n;
  const purge = await op(IDX, { op: "purge_expired", max_rows: 1000 });
  check("I7: purge_expired removes the table's expired rows", ok(purge).removed, expired);
  check("I7: and their index entries", await indexed(73), 0);
  check("I7: the live entries stay indexed", await indexed(72), 1);
});

scenario("typed indexes: D1 rows written by a put with 0, 1 and 4 indexes, with and without expiration; namespaces without indexes pay nothing (I8)", async () => {
  // From one user to the next, every indexed field changes.
  const v = (u, note = "") => ({ user_id: u, email: `${u}@example.com`, admin: u % 2 === 0, team: u, note });
  // Each fixture's first operation carries its schema; these are not measured.
  const warm = await ops({}, ["sessions", "one_index", "no_index"].map((f) => putSession(f, "cost:warm", v(1))));
  check("warm-up puts succeed", warm.map((x) => x.ok), [true, true, true]);
  ok(await op({ namespace: "idx_plain" }, { op: "put", key: "warm", text: "" }));
  const r = {};
  for (const [fixture, n] of [["no_index", 0], ["one_index", 1], ["sessions", 4]]) {
    const x = await ops({}, [
      putSession(fixture, "cost:k", v(80)),
      putSession(fixture, "cost:k", v(80)),
      putSession(fixture, "cost:k", v(80, "a new note")),
      putSession(fixture, "cost:k", v(81)),
      putSession(fixture, "cost:t", v(80), { expiration_ttl: 600 }),
      putSession(fixture, "cost:t", v(83), { expiration_ttl: 600 }),
    ]);
    check(`${fixture}: every put succeeds`, x.map((y) => y.ok), x.map(() => true));
    const label = `put_session, ${n} ${n === 1 ? "index" : "indexes"}`;
    cost(`${label}, new key`, x[0]);
    cost(`${label}, overwrite with the same value`, x[1]);
    cost(`${label}, overwrite, indexed fields unchanged, note changed`, x[2]);
    cost(`${label}, overwrite, every indexed field changed`, x[3]);
    cost(`${label}, new key, with expiration_ttl`, x[4]);
    cost(`${label}, overwrite with expiration_ttl, every indexed field changed`, x[5]);
    r[fixture] = x;
    check(`I8: ${n} indexes: each put is one call of one statement`, x.map((y) => [y.cost.calls, y.cost.statements]), x.map(() => [1, 1]));
    check(`I8: ${n} indexes: a new key writes at most 1 + ${n} rows (wrote ${x[0].cost.rows_written})`, x[0].cost.rows_written <= 1 + n, true);
    check(`I8: ${n} indexes: with an expiration, at most 2 + ${n} (wrote ${x[4].cost.rows_written})`, x[4].cost.rows_written <= 2 + n, true);
    check(`I8: ${n} indexes: an overwrite that leaves the indexed fields as they were writes 1 row`, [x[1].cost.rows_written, x[2].cost.rows_written], [1, 1]);
  }
  // The same JSON put through the untyped API: into a table without any index, and into the
  // table with indexes under the namespace without them.
  const plain = await ops({ namespace: "idx_plain" }, [{ op: "put", key: "cost:k", json: session(v(80)) }, { op: "put", key: "cost:t", json: session(v(80)), expiration_ttl: 600 }]);
  const none = await ops({ namespace: "idx_none", table: "idx_kv" }, [{ op: "put", key: "cost:u", json: session(v(80)) }]);
  cost("put (untyped) of the same JSON, a table without indexes", plain[0]);
  cost("put (untyped) of the same JSON with expiration_ttl, a table without indexes", plain[1]);
  check("I8: a typed namespace without indexes beside indexed ones costs what a plain put costs (1 row)", r.no_index[0].cost, { ...plain[0].cost, rows_written: 1 });
  check("I8: with an expiration too", r.no_index[4].cost, plain[1].cost);
  check("I8: an untyped put there, the same", none[0].cost, plain[0].cost);
  check("I8: the typed namespace without indexes wrote the JSON of its type, as the untyped API reads it", ok(await op({ namespace: "idx_none", table: "idx_kv" }, { op: "get", key: "cost:k" })).value, session(v(81)));
});

scenario("typed indexes: entries written before the typed namespace with indexes first ran are found (I9)", async () => {
  // Written through the untyped API into the namespace idx_late, which no typed namespace has
  // used yet in this Worker: its indexes do not exist.
  const late = { namespace: "idx_late" };
  const puts = await ops(late, [
    ...Array.from({ length: 10 }, (_, i) => ({ op: "put", key: `k${i}`, json: session({ user_id: i % 3 }) })),
    { op: "put", key: "big", json: session({ user_id: 0, note: "b".repeat(5000) }) },
    { op: "put", key: "plain", text: "not JSON" },
  ]);
  check("untyped puts succeed", puts.map((x) => x.ok), puts.map(() => true));
  const before = await sql("DB", "SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_late%$index$%'");
  check("no index yet", before.rows[0].n, 0);
  const r = await ops({}, [find("late", "user_id", 0, { summary: true }), find("late", "user_id", 1)]);
  cost("find, the first look-up of a namespace with 11 entries", r[0], " + the table's statements and creating its index over them");
  check("I9: the first look-up creates the index with the table's statements", r[0].cost.statements, schemaStatements + 1 + 1);
  const found = ok(r[0]).entries.map((e) => e.key);
  check("I9: built over the existing rows: every entry written before is found", found.filter((k) => k !== "big"), ["k0", "k3", "k6", "k9"]);
  check("I9: and by another value", keysOf(r[1]), ["k1", "k4", "k7"]);
  if (!found.includes("big")) {
    console.log("  NOTE I9/I11: a value over 1 KiB written before the index by a D1Namespace that did not declare it (so its row keeps no copy of the field) is not found");
  }
});

scenario("typed indexes: values written through the untyped API are indexed when JSON objects with the field; anything else is stored and not found (I10)", async () => {
  const r = await ops(IDX, [
    { op: "put", key: "raw:json", json: session({ user_id: 90 }) },
    { op: "put", key: "raw:text", text: "not JSON at all" },
    { op: "put", key: "raw:lacks", json: '{"other":90}' },
    { op: "put", key: "raw:string", json: session({ user_id: "90" }) },
    { op: "put", key: "raw:bytes", bytes: utf8(session({ user_id: 90 })) },
    { op: "put", key: "raw:array", json: "[90]" },
    { op: "put", key: "raw:number", json: "90" },
    { op: "put", key: "raw:long text", repeat: 5000 },
  ]);
  check("I10: every put succeeds (an index never fails a put)", r.map((x) => x.ok), r.map(() => true));
  check("I10: and writes its row", r.map((x) => x.cost.rows_written >= 1), r.map(() => true));
  const g = await ops(IDX, [
    { op: "get", key: "raw:text" },
    { op: "get", key: "raw:lacks" },
    { op: "get", key: "raw:bytes", as: "bytes" },
    find("sessions", "user_id", 90),
    find("sessions", "user_id", "90"),
  ]);
  check("I10: the values are stored as usual", [ok(g[0]).value, ok(g[1]).value, ok(g[2]).value], ["not JSON at all", '{"other":90}', utf8(session({ user_id: 90 }))]);
  check("I10: only the JSON object with the field is found; a JSON string \"90\" does not match the number 90", keysOf(g[3]), ["raw:json"]);
  check("I10: the value sent as decimal text is still the number 90", keysOf(g[4]), ["raw:json"]);
  // A JSON object with the field that is not a session: found, and decoding it is the page's error.
  ok(await op(IDX, { op: "put", key: "raw:partial", json: '{"user_id":91}' }));
  const partial = await op(IDX, find("sessions", "user_id", 91));
  check("I10: a match that does not decode into the type fails the page, naming its key", partial.error?.startsWith('the value of key "raw:partial" does not decode into the requested type'), true);
  ok(await op(IDX, { op: "delete", key: "raw:partial" }));
  check("deleted, the look-up is empty again", keysOf(await op(IDX, find("sessions", "user_id", 91))), []);
});

scenario("typed indexes: a u64 beyond 2^53 is refused at put, nothing written, and as a look-up value (I3)", async () => {
  const beyond = "9007199254740993";
  const r = await ops(IDX, [
    { op: "put_session", fixture: "sessions", key: "big", json: `{"user_id":${beyond},"email":"","admin":false,"team":null,"note":""}` },
    getEntry("big"),
    find("sessions", "user_id", beyond),
    deleteWhere("sessions", "user_id", beyond),
    putSession("sessions", "edge", { user_id: MAX_EXACT }),
    find("sessions", "user_id", MAX_EXACT),
    find("sessions", "user_id", String(MAX_EXACT)),
    { op: "put_session", fixture: "no_index", key: "big", json: `{"user_id":${beyond},"email":"","admin":false,"team":null,"note":""}` },
  ]);
  check("I3: the put fails with the field, the key and the value", r[0].error, `the indexed field "user_id" of the value for key "big" is ${beyond}, beyond 2^53: D1 could not find the entry by it; nothing was written`);
  check("I3: refused before D1 (0 calls)", r[0].cost.calls, 0);
  check("I3: nothing written", ok(r[1]).value, null);
  check("I3: a look-up by it fails", r[2].error, `cannot look up the index on "user_id": ${beyond} is beyond 2^53, which D1 cannot look up exactly`);
  check("I3: so does delete_where", r[3].error, `cannot look up the index on "user_id": ${beyond} is beyond 2^53, which D1 cannot look up exactly`);
  check("I3: refused before D1 (0 calls)", [r[2].cost.calls, r[3].cost.calls], [0, 0]);
  check("I3: 2^53 itself is stored and found (as a number and as text)", [r[4].ok, keysOf(r[5]), keysOf(r[6])], [true, ["edge"], ["edge"]]);
  check("a namespace without an index on the field stores it (A5: exactly)", [r[7].ok, ok(await op({ namespace: "idx_none", table: "idx_kv" }, { op: "get", key: "big" })).value], [true, `{"user_id":${beyond},"email":"","admin":false,"team":null,"note":""}`]);
});

// ---------------------------------------------------------------- reading close to users (R1-R12)

scenario("D1 sessions: a write's bookmark, handed to the next request's session, makes the write visible there; bookmarks advance; typed, atomic and index operations run over sessions (R1-R3)", async () => {
  const ns = { namespace: "sess" };
  const first = await ops({ ...ns, session: "first-primary" }, [{ op: "put", key: "k", text: "v1", metadata: { n: 1 } }]);
  check("R1: a put over a session", first[0].ok, true);
  const b1 = first.bookmark;
  check("R2: the session has a bookmark after the request's operations", typeof b1 === "string" && b1.length > 0, true);
  const second = await ops({ ...ns, session: b1 }, [
    { op: "get", key: "k", with_metadata: true },
    { op: "put", key: "k", text: "v2" },
  ]);
  check("R2: the next request's session, from that bookmark, sees the write", ok(second[0]), { value: "v1", metadata: { n: 1 } });
  const b2 = second.bookmark;
  check("R2: the bookmark advances after a write", typeof b2 === "string" && b2 > b1, true);
  const third = await ops({ ...ns, session: b2 }, [{ op: "get", key: "k" }]);
  check("R2: a session from the newer bookmark sees the newer write", ok(third[0]).value, "v2");
  check("R2: a read-only request's bookmark is at least the one it started from", third.bookmark >= b2, true);
  const loose = await ops({ ...ns, session: "first-unconstrained" }, [{ op: "get", key: "k" }]);
  check("first-unconstrained reads (local D1 has no replicas: the primary's data)", ok(loose[0]).value, "v2");
  const plain = await ops({ ...ns, session: null }, [{ op: "get", key: "k" }]);
  check("on the binding there is no bookmark", plain.bookmark, null);

  // R3: a new env.d1() and a new session for every operation, as a Worker makes per request.
  const fresh = await ops({ ...ns, session: b2, fresh_per_op: true }, [
    { op: "get", key: "k", entry: true },
    { op: "put", key: "k2", text: "w" },
    { op: "increment", key: "n", delta: "5" },
    atomic([["k2", null]], [{ type: "put", key: "k2", text: "not written" }]),
    atomic([], [{ type: "sum", key: "n", n: "1" }, { type: "put", key: "k3", text: "x" }]),
    { op: "get_bulk", keys: ["k", "k2", "k3"] },
    { op: "list" },
    { op: "delete", key: "k3" },
  ]);
  check("R1: every operation succeeds over a session", fresh.map((r) => r.ok), fresh.map(() => true));
  check("R3: no schema statements once the table is known, though each session is new", fresh.map((r) => r.cost.statements), [1, 1, 1, 2, 2, 3, 1, 1]);
  check("A7 over a session: a failed check writes nothing", ok(fresh[3]).committed, null);
  check("A7 over a session: a commit that holds writes", [STAMP.test(ok(fresh[4]).committed), ok(fresh[2]).value], [true, "5"]);
  check("over a session: get_bulk and list", [ok(fresh[5]).values, ok(fresh[6]).keys.map((k) => k.name)], [{ k: "v2", k2: "w", k3: "x" }, ["k", "k2", "k3", "n"]]);

  // Typed namespaces with indexes over a session (I4, I6).
  const typed = await ops({ session: b2 }, [
    putSession("sessions", "sess-typed", { user_id: 424242, email: "s@example.com" }),
    find("sessions", "user_id", 424242),
    deleteWhere("sessions", "user_id", 424242),
    find("sessions", "user_id", 424242),
  ]);
  check("typed put, look-up and delete_where over a session", [typed[0].ok, keysOf(typed[1]), ok(typed[2]).removed, keysOf(typed[3])], [true, ["sess-typed"], 1, []]);
});

const EDGE = { namespace: "edge", edge_cache: "suite" };
const warm = (key, extra = {}) => ({ op: "get", key, cache_ttl: 60, ...extra });

scenario("edge cache: cache_ttl serves repeated reads from the data center's cache, misses included, with no D1 call; reads without cache_ttl stay fresh (R6, R7, R11, R12)", async () => {
  const r = await ops(EDGE, [
    { op: "put", key: "hot", text: "v1", metadata: { m: [1, "é", null] } },
    warm("hot", { with_metadata: true }),
    warm("hot", { with_metadata: true }),
    warm("absent"),
    warm("absent"),
    { op: "put", key: "bin", bytes: [0, 255, 1, 128, 10] },
    warm("bin", { as: "bytes" }),
    warm("bin", { as: "bytes" }),
    warm("hot", { entry: true }),
    { op: "get", key: "hot", entry: true },
  ]);
  cost("get with cache_ttl, edge cache miss (read from D1, then cached)", r[1]);
  cost("get with cache_ttl, served by the edge cache", r[2]);
  check("R6: the first read goes to D1 (one call)", r[1].cost.calls, 1);
  check("R6, R12: the second is served by the cache: 0 D1 calls", r[2].cost.calls, 0);
  check("R11: value and metadata come back as stored", [ok(r[1]), ok(r[2])], [{ value: "v1", metadata: { m: [1, "é", null] } }, { value: "v1", metadata: { m: [1, "é", null] } }]);
  check("R6: a miss is cached too", [ok(r[3]).value, r[3].cost.calls, ok(r[4]).value, r[4].cost.calls], [null, 1, null, 0]);
  check("R11: bytes come back byte for byte from the cache", [ok(r[7]).value, r[7].cost.calls], [[0, 255, 1, 128, 10], 0]);
  check("A4 through the cache: the entry's versionstamp is the stored one", [r[8].cost.calls, ok(r[8]).version], [0, ok(r[9]).version]);

  // Changed behind d1ns's back (no purge): cached reads may lag for cache_ttl, as in KV; plain reads never.
  await sql("DB", `UPDATE "edge_kv_entries" SET value = 'v2' WHERE namespace = 'edge' AND key = 'hot'`);
  await sql("DB", `INSERT INTO "edge_kv_entries" (namespace, key, value) VALUES ('edge', 'absent', 'here now')`);
  const after = await ops(EDGE, [warm("hot"), { op: "get", key: "hot" }, warm("absent"), { op: "get", key: "absent" }]);
  check("R6: within cache_ttl a cached read serves what it cached", [ok(after[0]).value, after[0].cost.calls, ok(after[2]).value, after[2].cost.calls], ["v1", 0, null, 0]);
  check("R7: a read without cache_ttl goes to D1 and is fresh", [ok(after[1]).value, after[1].cost.calls, ok(after[3]).value, after[3].cost.calls], ["v2", 1, "here now", 1]);

  const uncached = await ops({ namespace: "edge" }, [warm("hot"), warm("hot")]);
  check("R7: without an edge cache, cache_ttl changes nothing: every read is fresh, one call", [ok(uncached[0]).value, ok(uncached[1]).value, uncached[0].cost.calls, uncached[1].cost.calls], ["v2", "v2", 1, 1]);
  const refused = await op(EDGE, warm("hot", { cache_ttl: 29 }));
  check("K18: cache_ttl below 30 is refused as in KV, before any call", [refused.ok, refused.cost.calls], [false, 0]);

  const bulk = await ops(EDGE, [
    { op: "put", key: "b1", text: "1" },
    { op: "put", key: "b2", text: "2", metadata: { two: 2 } },
    { op: "get_bulk", keys: ["b1", "b2", "b3"], cache_ttl: 60 },
    { op: "get_bulk", keys: ["b1", "b2", "b3", "b1"], cache_ttl: 60 },
    { op: "get_bulk", keys: ["b2", "b4"], cache_ttl: 60, with_metadata: true },
    warm("b2", { with_metadata: true }),
  ]);
  cost("get_bulk of 3 with cache_ttl, all served by the edge cache", bulk[3]);
  check("R6: get_bulk: D1 once, then the cache", [ok(bulk[2]).values, bulk[2].cost.calls, ok(bulk[3]).values, bulk[3].cost.calls], [{ b1: "1", b2: "2", b3: null }, 1, { b1: "1", b2: "2", b3: null }, 0]);
  check("R6: get_bulk with one uncached key reads only that one, in one call", [ok(bulk[4]).values, bulk[4].cost.calls], [{ b2: ["2", { two: 2 }], b4: [null, null] }, 1]);
  check("R6: a get is served what get_bulk cached", [ok(bulk[5]), bulk[5].cost.calls], [{ value: "2", metadata: { two: 2 } }, 0]);
});

scenario("edge cache: every write and delete through d1ns removes the key's cached entry before it returns (R8)", async () => {
  const ns = { ...EDGE, namespace: "edge_purge" };
  const r = await ops(ns, [
    { op: "put", key: "p", text: "1" },
    warm("p"),
    warm("p"),
    { op: "put", key: "p", text: "2" },
    warm("p"),
    { op: "put", key: "p", bytes: [51] },
    warm("p"),
    { op: "increment", key: "c", delta: "1" },
    warm("c"),
    { op: "increment", key: "c", delta: "1" },
    warm("c"),
    atomic([], [{ type: "put", key: "p", text: "committed" }, { type: "sum", key: "c", n: "10" }]),
    warm("p"),
    warm("c"),
    { op: "delete", key: "p" },
    warm("p"),
    atomic([], [{ type: "delete", key: "c" }]),
    warm("c"),
    warm("c"),
  ]);
  check("cached", [ok(r[2]).value, r[2].cost.calls], ["1", 0]);
  const seen = (i) => [ok(r[i]).value, r[i].cost.calls];
  check("R8: after a put, the next cached read is the new value from D1", seen(4), ["2", 1]);
  check("R8: after put_bytes", seen(6), ["3", 1]);
  check("R8: after increments", [seen(8), seen(10)], [["1", 1], ["2", 1]]);
  check("R8: after an atomic commit, every key it wrote", [seen(12), seen(13)], [["committed", 1], ["12", 1]]);
  check("R8: after a delete", seen(15), [null, 1]);
  check("R8: after a commit's delete; then cached again", [seen(17), seen(18)], [[null, 1], [null, 0]]);
});

scenario("edge cache: a cached entry is never served past its expiration, whatever cache_ttl says (R9)", async () => {
  const ns = { ...EDGE, namespace: "edge_exp" };
  const r = await ops(ns, [
    { op: "put", key: "short", text: "v", expiration_ttl: 3 },
    warm("short"),
    warm("short"),
  ]);
  check("cached before it expires", [ok(r[2]).value, r[2].cost.calls], ["v", 0]);
  await sleep(3200);
  const later = await ops(ns, [warm("short"), warm("short")]);
  check("R9: expired: not served from the cache (D1 says missing), then the miss is cached", [ok(later[0]).value, later[0].cost.calls, ok(later[1]).value, later[1].cost.calls], [null, 1, null, 0]);
});

scenario("edge cache: entries never collide across databases, tables, namespaces or key characters; long values go to D1 (R10, R11)", async () => {
  const keys = ["a/b", "a%2Fb", "a%2fb", "x/./y", "x/../y", "%2e", "?x=1", "#f", "é", "a b", "%", "a\\b"];
  const homes = [
    { namespace: "edge_a", edge_cache: "suite" },
    { namespace: "edge_b", edge_cache: "suite" },
    { namespace: "edge_a", table: "edge_shared", edge_cache: "suite" },
    { namespace: "edge_b", table: "edge_shared", edge_cache: "suite" },
    { binding: "DB2", namespace: "edge_a", edge_cache: "suite-db2" },
  ];
  for (const [h, home] of homes.entries()) {
    // Over sessions, DB2's table is unknown to the registry entry all sessions share (R3): its
    // first operation costs a failed call and a retry.
    const recovery = SESSION !== null && home.binding === "DB2";
    const puts = await ops(home, keys.map((key) => ({ op: "put", key, text: `${h}:${key}` })), { recovery });
    check(`home ${h}: puts`, puts.every((p) => p.ok), true);
  }
  for (const [h, home] of homes.entries()) {
    await ops(home, keys.map((key) => warm(key)));
  }
  for (const [h, home] of homes.entries()) {
    const reads = await ops(home, keys.map((key) => warm(key)));
    check(`R10: home ${h}: every key reads its own value from the cache`, reads.map((r) => [ok(r).value, r.cost.calls]), keys.map((key) => [`${h}:${key}`, 0]));
  }
  const long = await ops({ ...EDGE, namespace: "edge_long" }, [
    { op: "put", key: "long", repeat: 2 * 1024 * 1024 },
    warm("long", { summary: true }),
    warm("long", { summary: true }),
  ]);
  check("R11: a value over the cache's bound is read from D1 every time", [ok(long[2]), long[2].cost.calls > 0], [{ length: 2 * 1024 * 1024, same_byte: 120 }, true]);
});

// ---------------------------------------------------------------- shards and moves (S1-S9, M1-M9)

const SHARDS = ["DB", "DB2", "DB3"];
const SH = { namespace: "sh", shards: SHARDS };
const shardOf = async (opts, key) => ok(await op(opts, { op: "shard_of", key })).shard;
/** The shards (indexes) whose table holds a row for `key`, looked at with SQL on each binding. */
async function rowsOn(table, namespace, key) {
  const on = [];
  for (const [i, binding] of SHARDS.entries()) {
    const r = await sql(binding, `SELECT count(*) AS n FROM "${table}" WHERE namespace = ?1 AND key = ?2`, [namespace, key]);
    if (r.rows[0].n > 0) on.push(i);
  }
  return on;
}

scenario("shards: each key on one of 3 databases, placed by name and hash tag; single-key operations one call on one shard; get_bulk one call per shard involved (S1-S4)", async () => {
  const keys = Array.from({ length: 60 }, (_, i) => `k${String(i).padStart(3, "0")}`);
  const puts = await ops(SH, keys.map((key) => ({ op: "put", key, text: `v:${key}`, metadata: { key } })));
  cost("put on a namespace of 3 shards (first touch of each shard + creating its table)", puts[0]);
  const later = puts.slice(10);
  check("S4: a put is one call on one shard", later.every((r) => r.cost.calls === 1 && r.cost.shard_calls.filter((n) => n > 0).length === 1), true);
  const placed = [];
  for (const key of keys.slice(0, 12)) placed.push([await shardOf(SH, key), await rowsOn("sh_kv_entries", "sh", key)]);
  check("S2: each key's row is on the shard shard_of names, and only there", placed.every(([shard, on]) => on.length === 1 && on[0] === shard), true);
  const counts = [0, 0, 0];
  for (const key of keys) counts[await shardOf(SH, key)]++;
  check("S2: 60 keys spread over all 3 shards", counts.every((n) => n > 0), true);
  const reordered = await ops({ ...SH, shards: ["DB3", "DB", "DB2"] }, keys.slice(0, 10).map((key) => ({ op: "get", key })));
  check("S1: placement follows the names, not their order", reordered.map((r) => ok(r).value), keys.slice(0, 10).map((key) => `v:${key}`));
  const r = await ops(SH, [
    { op: "get", key: "k005", with_metadata: true },
    { op: "get_bulk", keys },
    { op: "get_bulk", keys: ["k001"] },
    { op: "increment", key: "n", delta: "2" },
    { op: "delete", key: "k006" },
    { op: "get", key: "k006" },
  ]);
  cost("get on a namespace of 3 shards", r[0]);
  cost("get_bulk of 60 keys over 3 shards", r[1]);
  cost("increment on a namespace of 3 shards", r[3]);
  cost("delete on a namespace of 3 shards", r[4]);
  check("S4: get, increment and delete: one call on one shard, as unsharded", [r[0], r[3], r[4]].map((x) => [x.cost.calls, x.cost.shard_calls.filter((n) => n > 0).length]), [[1, 1], [1, 1], [1, 1]]);
  check("S4: get reads 1 row, delete writes at most 2", [r[0].cost.rows_read, r[4].cost.rows_written <= 2], [1, true]);
  check("values and metadata", [ok(r[0]), ok(r[3]).value, ok(r[5]).value], [{ value: "v:k005", metadata: { key: "k005" } }, "2", null]);
  check("S4: get_bulk of keys on 3 shards: one call per shard", r[1].cost.shard_calls, [1, 1, 1]);
  check("S4: get_bulk of keys on one shard: one call", r[2].cost.calls, 1);
  check("get_bulk finds every key", Object.keys(ok(r[1]).values).length === 60 && ok(r[1]).values.k006 === "v:k006", true);

  // S3: hash tags place keys together; S6: a commit on one shard works, across shards it is refused.
  const tagged = await ops(SH, [
    { op: "shard_of", key: "user:{42}:cart" },
    { op: "shard_of", key: "user:{42}:prefs" },
    atomic([["user:{42}:cart", null]], [{ type: "put", key: "user:{42}:cart", text: "3 items" }, { type: "put", key: "user:{42}:prefs", text: "dark" }, { type: "sum", key: "user:{42}:visits", n: "1" }]),
  ]);
  check("S3: the same tag, the same shard", ok(tagged[0]).shard, ok(tagged[1]).shard);
  check("S6: a commit whose keys share a tag is one batch on one shard", [STAMP.test(ok(tagged[2]).committed), tagged[2].cost.calls], [true, 1]);
  const [a, b] = await (async () => {
    for (const x of keys) for (const y of keys) if ((await shardOf(SH, x)) !== (await shardOf(SH, y))) return [x, y];
    return [null, null];
  })();
  const cross = await op(SH, atomic([], [{ type: "put", key: a, text: "x" }, { type: "put", key: b, text: "y" }]));
  check("S6: a commit across shards is refused before any call, naming two keys and hash tags", [cross.ok, cross.cost.calls, cross.error.includes(JSON.stringify(a)) && cross.error.includes(JSON.stringify(b)) && cross.error.includes("hash tag")], [false, 0, true]);
  check("S6: nothing written", ok(await op(SH, { op: "get", key: a })).value, `v:${a}`);
});

scenario("shards: list over 3 databases in key order with cursors, each page one query per shard, at most limit + 1 rows each (S5); purge_expired totals; one bookmark for all shards (S7, S8)", async () => {
  const ns = { namespace: "shl", shards: SHARDS };
  const keys = Array.from({ length: 250 }, (_, i) => `item:${String(i * 7919 % 1000).padStart(4, "0")}`);
  await ops(ns, keys.map((key) => ({ op: "put", key, text: "v" })));
  await ops(ns, [{ op: "put", key: "other", text: "v" }, { op: "put", key: "item-after", text: "v" }]);
  for (const limit of [1, 7, 100, 1000]) {
    const seen = [];
    let cursor;
    let pages = 0;
    const costs = [];
    do {
      const page = await op(ns, { op: "list", prefix: "item:", limit, cursor });
      seen.push(...ok(page).keys.map((k) => k.name));
      cursor = ok(page).cursor ?? undefined;
      costs.push(page.cost);
      pages++;
      if (pages > 300) break;
    } while (cursor);
    check(`S5: limit ${limit}: every key once, in byte order`, seen, byteOrder(keys));
    check(`S5: limit ${limit}: each page at most one call per shard, at most limit + 1 rows each`, costs.every((c) => c.shard_calls.every((n) => n <= 1) && c.rows_read <= 3 * (limit + 1)), true);
    if (limit === 100) cost("list page of 100 over 3 shards", { cost: costs[0] });
  }
  const expiring = await ops(ns, Array.from({ length: 6 }, (_, i) => ({ op: "put", key: `exp:${i}`, text: "v", expiration_ttl: 1 })));
  check("puts with a TTL of 1 s", expiring.every((r) => r.ok), true);
  await sleep(1300);
  const purged = await op(ns, { op: "purge_expired", max_rows: 100 });
  check("S7: purge_expired runs on every shard and totals", [ok(purged).removed, purged.cost.shard_calls], [6, [1, 1, 1]]);
  const sessions = await ops({ ...ns, session: "first-primary" }, [{ op: "put", key: "b", text: "1" }, { op: "get_bulk", keys: keys.slice(0, 60) }]);
  const parts = (sessions.bookmark ?? "").split(",").map((part) => part.split("=")[0]).sort();
  check("S8: one bookmark string carrying each shard's bookmark", parts, ["DB", "DB2", "DB3"]);
  const again = await ops({ ...ns, session: sessions.bookmark.split(",").find((p) => p.startsWith("DB=")).slice(3) }, [{ op: "get", key: "b" }]);
  check("S8: a session from a shard's part", ok(again[0]).value, "1");
});

scenario("moving in from Workers KV without downtime: reads fall through, writes and deletes during the move win, the mover copies binary values, metadata and expirations intact, and no deleted key comes back (M1-M9)", async () => {
  const far = Math.floor(Date.now() / 1000) + 86400;
  const seed = Array.from({ length: 90 }, (_, i) => {
    const key = `kv:${String(i).padStart(3, "0")}`;
    const kind = i % 5 === 0 ? { bytes: [0, 255, i, 128] } : { text: `old value ${i} é` };
    return { op: "kv_put", key, ...kind, ...(i % 3 === 0 ? { metadata: { i, tag: "ü" } } : {}), ...(i % 7 === 0 ? { expiration: far } : {}) };
  });
  const seeded = await ops({}, seed);
  check("KV seeded", seeded.every((r) => r.ok), true);
  const ns = { namespace: "fromkv", previous_kv: true };
  const expected = new Map(seed.map((s) => [s.key, { value: s.bytes ?? s.text, metadata: s.metadata ?? null, expiration: s.expiration ?? null }]));

  const through = await ops(ns, [
    { op: "get", key: "kv:003", with_metadata: true },
    { op: "get", key: "kv:005", as: "bytes" },
    { op: "get", key: "kv:007", entry: true },
    { op: "get", key: "kv:nope" },
    { op: "get_bulk", keys: ["kv:001", "kv:002", "kv:nope"] },
  ]);
  cost("get that falls through to Workers KV (M2: the D1 call, then KV)", through[0]);
  check("M2: a key only in KV reads with its metadata", ok(through[0]), { value: "old value 3 é", metadata: { i: 3, tag: "ü" } });
  check("M2: binary values byte for byte", ok(through[1]).value, [0, 255, 5, 128]);
  check("M2: with its expiration", ok(through[2]).expiration, far);
  check("M9: a read that falls through costs one D1 call (and the KV read)", through[0].cost.calls, 1);
  check("M2: get_bulk falls through for its missing keys", ok(through[4]).values, { "kv:001": "old value 1 é", "kv:002": "old value 2 é", "kv:nope": null });

  // The move, interleaved with the application's writes and deletes through d1ns, and deletes
  // reaching KV late (the old app's last deletes): none may come back.
  let cursor = null;
  let steps = 0;
  let done = false;
  const progress = { scanned: 0, copied: 0, skipped: 0 };
  let round = 0;
  while (!done && steps < 50) {
    const w = round * 3;
    const writes = [
      { op: "put", key: `kv:${String(w + 10).padStart(3, "0")}`, text: `new ${w}` },
      { op: "delete", key: `kv:${String(w + 11).padStart(3, "0")}` },
      { op: "put", key: `new:${round}`, text: `fresh ${round}`, metadata: { round } },
    ];
    const wr = await ops(ns, writes);
    if (round === 0) cost("delete during a move (a tombstone)", wr[1]);
    check(`round ${round}: writes`, wr.every((r) => r.ok), true);
    expected.set(writes[0].key, { value: writes[0].text, metadata: null, expiration: null });
    expected.set(writes[1].key, null);
    expected.set(writes[2].key, { value: writes[2].text, metadata: { round }, expiration: null });
    const step = await op(ns, { op: "move_step", cursor, max_keys: 20 });
    if (steps === 0) cost("move_step of 20 keys from Workers KV", step);
    const p = ok(step);
    progress.scanned += p.scanned;
    progress.copied += p.copied;
    progress.skipped += p.skipped;
    cursor = p.cursor;
    done = p.done;
    steps++;
    round++;
  }
  check("M6: the mover finishes", done, true);
  check("M6: every KV key looked at; the ones written here skipped", [progress.scanned, progress.copied + progress.skipped], [90, 90]);
  // A delete that KV shows late: still in KV after the move; it must stay deleted here.
  const lateDeleted = "kv:011";
  check("the deleted key is still in KV", ok(await op({}, { op: "get", key: lateDeleted })).value === null, true);
  const listing = [];
  let lc;
  do {
    const page = ok(await op(ns, { op: "list", prefix: "kv:", limit: 17, cursor: lc }));
    listing.push(...page.keys.map((k) => k.name));
    lc = page.cursor ?? undefined;
  } while (lc);
  const live = [...expected.entries()].filter(([k, v]) => v !== null && k.startsWith("kv:")).map(([k]) => k);
  check("M5: the list during the move merges both homes, tombstones hiding", listing, byteOrder(live));

  // After the move, without the previous home: everything is here.
  const after = { namespace: "fromkv" };
  const reads = await ops(after, [...expected.keys()].map((key) => ({ op: "get", key, as: "bytes", entry: true })));
  const got = new Map([...expected.keys()].map((key, i) => [key, ok(reads[i])]));
  const mismatches = [...expected.entries()].filter(([key, want]) => {
    const g = got.get(key);
    if (want === null) return g.value !== null;
    const bytes = Array.isArray(want.value) ? want.value : utf8(want.value);
    return JSON.stringify([g.value, g.metadata, g.expiration]) !== JSON.stringify([bytes, want.metadata, want.expiration]);
  });
  check("M3, M4, M6: after the move every key has its latest value, metadata and expiration; deleted keys stay deleted", mismatches.map(([k]) => k), []);
  const purge = await op(after, { op: "purge_expired", max_rows: 1000 });
  check("M4: once the previous home is dropped, purge_expired removes the tombstones", ok(purge).removed >= 1, true);
});

scenario("resharding a live namespace from 2 databases to 3 (M8)", async () => {
  const old = { namespace: "reshard", shards: ["DB", "DB2"] };
  const keys = Array.from({ length: 80 }, (_, i) => `r:${String(i).padStart(3, "0")}`);
  await ops(old, keys.map((key) => ({ op: "put", key, text: `v ${key}` })));
  const ns = { namespace: "reshard", shards: SHARDS, previous_shards: ["DB", "DB2"] };
  const during = await ops(ns, [{ op: "get", key: "r:001" }, { op: "delete", key: "r:002" }, { op: "put", key: "r:003", text: "new" }]);
  check("reads and writes during the move", [ok(during[0]).value, during[1].ok, during[2].ok], ["v r:001", true, true]);
  let cursor = null;
  const total = { scanned: 0, copied: 0, in_place: 0, removed: 0, changed: 0 };
  for (let i = 0; i < 20; i++) {
    const p = ok(await op(ns, { op: "move_step", cursor, max_keys: 15 }));
    for (const k of Object.keys(total)) total[k] += p[k];
    cursor = p.cursor;
    if (p.done) break;
  }
  check("M8: keys whose shard did not change stay, the others are copied and their old copies removed", [total.copied === total.removed, total.changed, total.copied > 0, total.in_place > 0], [true, 0, true, true]);
  const after = { namespace: "reshard", shards: SHARDS };
  const reads = await ops(after, keys.map((key) => ({ op: "get", key })));
  check("every key in its new home with its latest value", reads.map((r) => ok(r).value), keys.map((key) => (key === "r:002" ? null : key === "r:003" ? "new" : `v ${key}`)));
  let strays = 0;
  for (const key of keys.slice(0, 20)) {
    const on = await rowsOn("reshard_kv_entries", "reshard", key);
    const home = await shardOf(after, key);
    if (on.some((i) => i !== home)) strays++;
  }
  check("M8: the old layout is drained (no row left off a key's new shard)", strays, 0);
});

scenario("Rust-side scenarios (worker/src/scenarios.rs)", async () => {
  const names = await (await fetch(`${base}/scenarios`)).json();
  check("the Worker lists its scenarios", names.includes("typed_namespace"), true);
  for (const name of names) {
    const observed = await post(`/scenario/${name}`);
    if (observed.skipped) {
      skipped++;
      console.log(`  SKIP ${name}: ${observed.skipped}`);
      continue;
    }
    for (const c of observed.checks) check(`${name}: ${c.name}`, c.actual, c.expected);
  }
});

// ---------------------------------------------------------------- cost rules over the whole run

function costRules() {
  current = "cost rules";
  // Values over D1's 2,000,000-byte row are stored in chunks (K9): their statements and rows grow
  // with the chunks, and their scenario checks them; the rules below are for everything else (and
  // so for no value over 1 KiB, which is stored in chunks too).
  const length = (o) => Math.max(o.repeat ?? 0, o.note_repeat ?? 0, o.json?.length ?? 0, o.text?.length ?? 0, o.bytes?.length ?? 0);
  // A look-up page that returns a value over 128 KiB reads it in a further call (I5), as the
  // scenario of such values checks.
  const longFound = (x) => x.op.op === "find" && (x.r.result?.entries ?? []).some((e) => (e.note?.length ?? 0) > 128 * 1024);
  // A read through the edge cache may cost no D1 call at all (R12): its scenarios count those.
  const cached = (x) => x.opts.edge_cache !== undefined && x.op.cache_ttl !== undefined;
  // Namespaces over several databases, or moving in, have cost rules of their own (S4, S5, M9):
  // their scenarios check them.
  const spread = (x) => x.opts.shards !== undefined || x.opts.previous_kv || x.opts.previous_shards !== undefined || ["kv_put", "kv_delete"].includes(x.op.op);
  const reached = allOps.filter((x) => x.r.ok && !x.recovery && !x.scenario.startsWith("large values") && length(x.op) <= 1024 && !longFound(x) && !cached(x) && !spread(x));
  const badIn = (pred) => (list) => list.filter((x) => !pred(x)).map((x) => ({ scenario: x.scenario, op: x.op.op, key: x.op.key, cost: x.r.cost }));
  const bad = (pred) => badIn(pred)(reached);
  check("every operation is exactly one D1 call", bad((x) => x.r.cost.calls === 1), []);
  const schema = (x) => (x.schema ? schemaStatements + x.indexes : 0);
  // An operation's own statements: one, but for a get_bulk (one per distinct key, in its one
  // batch) and a delete_where (the delete and the count of its changes; with an edge cache,
  // one that returns the keys removed).
  const own = (x) => (x.op.op === "get_bulk" ? new Set(x.op.keys).size : x.op.op === "delete_where" && !x.opts.edge_cache ? 2 : 1);
  check(
    "schema statements only on the first operation per database and table (a new D1Namespace per request adds none)",
    bad((x) => x.op.op === "atomic" || x.r.cost.statements === schema(x) + own(x)),
    [],
  );
  // A7: one batch, whatever its checks hold: one statement for all its checks, one per mutation,
  // and one per write of a key the commit has written already (its version is cleared first).
  const rewrites = (mutations) => {
    const written = new Set();
    return mutations.filter((m) => m.type !== "delete" && (written.has(m.key) || !written.add(m.key))).length;
  };
  const commits = reached.filter((x) => x.op.op === "atomic");
  check(
    `a commit is one statement for its checks, one per mutation and one per rewrite of a key (${commits.length} commits)`,
    bad((x) => x.op.op !== "atomic" || x.r.cost.statements === schema(x) + (x.op.checks.length > 0 ? 1 : 0) + x.op.mutations.length + rewrites(x.op.mutations)),
    [],
  );
  const plain = reached.filter((x) => !x.schema);
  const badOf = (list, pred) => list.filter((x) => !pred(x)).map((x) => ({ scenario: x.scenario, key: x.op.key, cost: x.r.cost }));
  const gets = plain.filter((x) => x.op.op === "get" && x.r.result.value !== null);
  check(`get hit reads 1 row (${gets.length} gets)`, badOf(gets, (x) => x.r.cost.rows_read === 1), []);
  // I8: a namespace with n indexes (in the database, whichever API writes) writes up to n rows more.
  const indexesOf = (x) => {
    const table = x.opts.table ?? `${x.opts.namespace ?? ""}_kv_entries`;
    const f = Object.values(fixtures ?? {}).find((f) => f.namespace === (x.opts.namespace ?? "") && f.table === table);
    return f?.indexes ?? 0;
  };
  const puts = plain.filter((x) => x.op.op === "put");
  check(`put writes at most 2 rows, and 1 more per index of its namespace (${puts.length} puts)`, badOf(puts, (x) => x.r.cost.rows_written <= 2 + indexesOf(x)), []);
  const deletes = plain.filter((x) => x.op.op === "delete");
  check(`delete writes at most 2 rows, and 1 more per index of its namespace (${deletes.length} deletes)`, badOf(deletes, (x) => x.r.cost.rows_written <= 2 + indexesOf(x)), []);
  const typedPuts = plain.filter((x) => x.op.op === "put_session");
  check(
    `I8: a typed put to a namespace with n indexes writes at most 1 + n rows, 2 + n with an expiration (${typedPuts.length} puts)`,
    badOf(typedPuts, (x) => x.r.cost.rows_written <= 1 + x.indexes + (x.op.expiration || x.op.expiration_ttl ? 1 : 0)),
    [],
  );
  // I5: one row per entry returned and one more, and one per expired match not yet purged.
  // Pages of values in chunks (read with `summary`) read their chunks too: their scenario shows it.
  const finds = plain.filter((x) => x.op.op === "find" && !x.op.summary);
  check(
    `I5: a look-up page reads at most its entries + 1 rows, however many entries its namespace has (${finds.length} pages)`,
    badOf(finds, (x) => x.r.cost.rows_read <= x.r.result.entries.length + 1 + x.expired),
    [],
  );
  const typedDeletes = plain.filter((x) => x.op.op === "delete_where");
  check(`I6: delete_where is one call of the delete and the count of its changes (${typedDeletes.length})`, badOf(typedDeletes, (x) => x.r.cost.calls === 1 && x.r.cost.statements === (x.opts.edge_cache ? 1 : 2)), []);
  const increments = plain.filter((x) => x.op.op === "increment");
  check(`increment writes at most 2 rows (${increments.length} increments)`, badOf(increments, (x) => x.r.cost.rows_written <= 2), []);
  const reads = plain.filter((x) => ["get", "get_bulk", "list", "find"].includes(x.op.op));
  check(`reads never write (${reads.length} reads)`, badOf(reads, (x) => x.r.cost.rows_written === 0), []);
  const bulk100 = plain.filter((x) => x.op.op === "get_bulk" && x.op.keys.length === 100);
  if (!SHARDED) check("get_bulk of 100 keys was measured, one call each", [bulk100.length > 0, bulk100.every((x) => x.r.cost.calls === 1)], [true, true]);
  // S4, S5 over shards: a single-key operation is one call on one shard; a bulk read, list page
  // or purge asks each shard at most once.
  const onShards = allOps.filter((x) => x.r.ok && !x.recovery && x.opts.shards !== undefined && x.r.cost.shard_calls !== undefined && length(x.op) <= 1024);
  const single = onShards.filter((x) => ["get", "put", "delete", "increment"].includes(x.op.op) && !(x.opts.previous_kv || x.opts.previous_shards) && !(x.opts.edge_cache && x.op.cache_ttl));
  check(`S4: a get, put, delete or increment over shards is one call on one shard (${single.length})`, badIn((x) => x.r.cost.calls === 1 && x.r.cost.shard_calls.filter((n) => n > 0).length === 1)(single), []);
  const fanned = onShards.filter((x) => ["get_bulk", "list", "purge_expired"].includes(x.op.op));
  check(`S4, S5: a get_bulk, list page or purge over shards asks each shard at most once (${fanned.length})`, badIn((x) => x.r.cost.shard_calls.every((n) => n <= 1))(fanned), []);
}

function printCostTable() {
  const head = ["operation", "D1 calls", "statements", "rows_read", "rows_written"];
  const rows = costRows.map((r) => [r.label, r.calls, r.statements, r.rows_read, r.rows_written].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ")} |`;
  console.log("\nD1 cost per operation (D1's own meta.rows_read / meta.rows_written):\n");
  console.log(line(head));
  console.log(`|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`);
  for (const r of rows) console.log(line(r));
  console.log();
}

// ---------------------------------------------------------------- --bench: d1ns against Workers KV

// `node driver.mjs --bench` (or `bash scripts/workerd-e2e.sh --bench`): instead of the suite, the
// same operations through Workers KV (wrangler's local KV, binding KV) and through d1ns (binding
// DB), in one run of one Worker, timed inside the Worker (worker/src/bench.rs), ROUNDS rounds
// alternating which side goes first. Prints medians and the ratio d1ns / KV; then d1ns against
// its own statements sent by hand on D1 (small gets and puts, interleaved), to tell D1's share
// from d1ns's.
// D1NS_BENCH_SMOKE=1 (CI): every case once on small sizes, in seconds; its figures mean nothing,
// but it fails, as the full run does, when the hand-written side is not d1ns's SQL.
const SMOKE = Boolean(process.env.D1NS_BENCH_SMOKE);
const ROUNDS = SMOKE ? 1 : Number(process.env.D1NS_BENCH_ROUNDS) || 5;
const SMALL_OPS = SMOKE ? 50 : 1000;
const SMALL_BATCH = SMOKE ? 50 : 250; // operations per request
const SMALL_LEN = 100;
// d1ns and its statements by hand alternate in blocks of this many operations (see overhead()).
const OVERHEAD_BLOCK = 25;
const OVERHEAD_ROUNDS = 2 * ROUNDS - 1;
const MIB = 1024 * 1024;
const LARGE = [
  ["1 MiB", MIB],
  ["10 MiB", 10 * MIB],
  ["25 MiB", 26_214_400],
].slice(0, SMOKE ? 1 : undefined);
const KINDS = ["bytes", "text"];
// Medium values: MEDIUM_OPS puts, then MEDIUM_OPS gets, per request.
const MEDIUM = [
  ["16 KiB", 16 * 1024],
  ["256 KiB", 256 * 1024],
];
const MEDIUM_OPS = SMOKE ? 2 : 20;
// A small key among NEIGHBOURS keys with values of each size (a table each, through d1ns):
// NEIGHBOUR_GETS gets of it per size and round, d1ns and its get statement by hand. The small
// key is n:100 (worker/src/bench.rs), so there are at least 100 neighbours.
const NEIGHBOURS = SMOKE ? 100 : 200;
const NEIGHBOUR_GETS = SMOKE ? 10 : 200;
const NEIGHBOUR_SIZES = [
  ["100 B", 100],
  ["16 KiB", 16 * 1024],
  ["256 KiB", 256 * 1024],
  ["1 MiB", MIB],
  ["1.8 MB", 1_800_000],
].slice(0, SMOKE ? 2 : undefined);

async function timed(body) {
  const started = performance.now();
  const r = await post("/bench", body);
  return { ...r, http_ms: performance.now() - started };
}

async function small(side, op) {
  let ms = 0;
  let http = 0;
  for (let from = 0; from < SMALL_OPS; from += SMALL_BATCH) {
    const r = await timed({ case: `small_${op}`, side, from, count: SMALL_BATCH, value_len: SMALL_LEN });
    if (r.ops !== SMALL_BATCH) throw new Error(`small_${op} on ${side}: ${r.ops} operations`);
    ms += r.ms;
    http += r.http_ms;
  }
  return { ms, http_ms: http };
}

async function large(side, kind, size, seed) {
  const key = `large:${kind}:${size}`;
  const put = await timed({ case: "large_put", side, kind, key, size, seed });
  const get = await timed({ case: "large_get", side, kind, key, size, seed });
  // The Worker answers an error unless the value read is the value written, byte for byte.
  check(`${side}: ${kind} ${size} bytes round-trip exactly`, [get.exact, get.length], [true, size]);
  return { put, get };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

// d1ns's get statement and its two halves, by hand on D1, over the small keys: shows what the
// large values stored in the same tables do to small gets.
const probes = [];
async function probeGets(when) {
  const row = { when };
  for (const sql of ["union", "entries", "chunks"]) {
    const r = await timed({ case: "probe_gets", count: SMALL_OPS, sql });
    row[sql] = r.ms;
    row[`${sql}_rows`] = r.rows_read;
  }
  probes.push(row);
}

/**
 * d1ns against its own statements by hand on D1, SMALL_OPS operations a side per round, in one
 * request per round that alternates the two sides in blocks (worker/src/bench.rs, overhead), so
 * that a change of the machine's load falls on both sides alike.
 */
const overheads = [];
async function overhead(op, when) {
  const o = { label: `${SMALL_OPS} ${op}s, ${SMALL_LEN}-byte text, ${when}`, d1ns: [], hand: [] };
  for (let round = 0; round < OVERHEAD_ROUNDS; round++) {
    const r = await timed({ case: "overhead", op, count: SMALL_OPS, block: OVERHEAD_BLOCK, value_len: SMALL_LEN });
    o.d1ns.push(r.d1ns_ms);
    o.hand.push(r.hand_ms);
  }
  overheads.push(o);
}

/** The small key among neighbours of each size: fills the tables, times the gets, prints. */
async function neighbours() {
  const started = Date.now();
  for (const [, size] of NEIGHBOUR_SIZES) {
    for (let from = 0; from <= NEIGHBOURS; from += 50) {
      await timed({ case: "neighbours_fill", size, from, count: Math.min(50, NEIGHBOURS + 1 - from) });
    }
  }
  const fill = ((Date.now() - started) / 1000).toFixed(1);
  const gets = new Map(NEIGHBOUR_SIZES.map(([name]) => [name, { d1ns: [], hand: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    // Every round visits every size, starting from another one each round.
    for (let i = 0; i < NEIGHBOUR_SIZES.length; i++) {
      const [name, size] = NEIGHBOUR_SIZES[(i + round) % NEIGHBOUR_SIZES.length];
      const r = await timed({ case: "neighbour_gets", size, count: NEIGHBOUR_GETS });
      gets.get(name).d1ns.push(r.d1ns_ms / NEIGHBOUR_GETS);
      gets.get(name).hand.push(r.hand_ms / NEIGHBOUR_GETS);
    }
  }
  const ms = (x) => x.toFixed(3);
  const base = gets.get(NEIGHBOUR_SIZES[0][0]);
  const [baseD1ns, baseHand] = [median(base.d1ns), median(base.hand)];
  console.log(
    `\nA get of one small key among ${NEIGHBOURS} keys with values of each size (a table each; filled in ${fill} s), ` +
      `ms per get, median of ${ROUNDS} rounds of ${NEIGHBOUR_GETS} gets:\n`,
  );
  console.log("| neighbours' values | d1ns | d1ns / 100 B case | by hand | by hand / 100 B case | d1ns / by hand |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const [name] of NEIGHBOUR_SIZES) {
    const [d, h] = [median(gets.get(name).d1ns), median(gets.get(name).hand)];
    console.log(`| ${name} | ${ms(d)} | ${(d / baseD1ns).toFixed(2)} | ${ms(h)} | ${(h / baseHand).toFixed(2)} | ${(d / h).toFixed(2)} |`);
  }
}

/** Writes the large values again (d1ns side), for the phase profile below. */
async function restoreLarge() {
  for (const [, size] of LARGE) {
    for (const kind of KINDS) await timed({ case: "large_put", side: "d1ns", kind, key: `large:${kind}:${size}`, size, seed: 1000 + ROUNDS - 1 });
  }
}

async function runBench() {
  current = "bench";
  // Does Rust work between two awaits move Date.now() in this workerd? If not, a timed section
  // would miss the decoding done after its last I/O.
  const probe = await timed({ case: "clock", spin: 200_000_000 });
  console.log(
    `clock probe: ${Math.round(probe.http_ms)} ms of computation seen from the driver; Date.now() inside the Worker moved ` +
      `${probe.spin_ms} ms across it, ${probe.spin_then_io_ms} ms across it and one KV read`,
  );
  // Warm-up: the isolate, d1ns's table (created by its first operation), KV's storage; the
  // small keys exist on both sides before the first timed round.
  for (const side of ["kv", "d1ns"]) {
    await small(side, "put");
    await small(side, "get");
  }
  // The hand-written statements are the ones d1ns sends (the Worker answers an error if not).
  check("the hand-written get and put are d1ns's statements", (await timed({ case: "same_sql" })).same, true);
  await probeGets("before any large value was stored");
  const cases = [
    [`${SMALL_OPS} gets, ${SMALL_LEN}-byte text`, (side) => small(side, "get"), "get"],
    [`${SMALL_OPS} puts, ${SMALL_LEN}-byte text`, (side) => small(side, "put"), "put"],
  ];
  const samples = new Map(); // label -> { kv: [{ms, http_ms}], d1ns: [...] }
  const add = (label, side, sample) => {
    if (!samples.has(label)) samples.set(label, { kv: [], d1ns: [] });
    samples.get(label)[side].push(sample);
  };
  const withLarge = `${SMALL_OPS} gets, ${SMALL_LEN}-byte text, with the medium and large values stored too`;
  // Small cases first, in a table that holds only small values. The side that goes first
  // alternates from round to round.
  for (let round = 0; round < ROUNDS; round++) {
    const started = Date.now();
    const two = round % 2 === 0 ? ["kv", "d1ns"] : ["d1ns", "kv"];
    // Puts first: the gets read what the puts of this round wrote.
    for (const side of two) add(cases[1][0], side, await cases[1][1](side));
    for (const side of two) add(cases[0][0], side, await cases[0][1](side));
    console.log(`small round ${round + 1}/${ROUNDS} (${two.join(", ")}): ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  await overhead("put", "small values only");
  await overhead("get", "small values only");
  // Large values: the same keys every round (after the first, puts overwrite).
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ["kv", "d1ns"] : ["d1ns", "kv"];
    const started = Date.now();
    for (const [name, size] of LARGE) {
      for (const kind of KINDS) {
        for (const side of order) {
          const { put, get } = await large(side, kind, size, 1000 + round);
          add(`put, ${name} ${kind}`, side, put);
          add(`get, ${name} ${kind}`, side, get);
        }
      }
    }
    for (const [name, size] of MEDIUM) {
      for (const kind of KINDS) {
        for (const side of order) {
          const r = await timed({ case: "medium", side, kind, size, count: MEDIUM_OPS, seed: 2000 + round });
          add(`${MEDIUM_OPS} puts, ${name} ${kind}`, side, { ms: r.put_ms, http_ms: null });
          add(`${MEDIUM_OPS} gets, ${name} ${kind}`, side, { ms: r.get_ms, http_ms: null });
        }
      }
    }
    console.log(`medium and large round ${round + 1}/${ROUNDS} (${order.join(", ")}): ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  // Small gets again, now that the medium and large values sit in the same stores.
  for (let round = 0; round < ROUNDS; round++) {
    const two = round % 2 === 0 ? ["kv", "d1ns"] : ["d1ns", "kv"];
    for (const side of two) add(withLarge, side, await small(side, "get"));
  }
  await overhead("get", "medium and large values stored too");
  const order = [
    cases[0][0],
    cases[1][0],
    ...MEDIUM.flatMap(([name]) => KINDS.flatMap((kind) => [`${MEDIUM_OPS} puts, ${name} ${kind}`, `${MEDIUM_OPS} gets, ${name} ${kind}`])),
    ...LARGE.flatMap(([name]) => KINDS.flatMap((kind) => [`put, ${name} ${kind}`, `get, ${name} ${kind}`])),
    withLarge,
  ];
  const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
  const table = (title, field) => {
    console.log(`\n${title}\n`);
    console.log("| operation | KV median (ms) | d1ns median (ms) | d1ns / KV |");
    console.log("|---|---:|---:|---:|");
    for (const label of order) {
      const s = samples.get(label);
      // The medium cases time puts and gets in one request: no driver figure of their own.
      if (!s || s.d1ns.some((x) => x[field] === null)) continue;
      const kv = median(s.kv.map((x) => x[field]));
      const d1 = median(s.d1ns.map((x) => x[field]));
      console.log(`| ${label} | ${fmt(kv)} | ${fmt(d1)} | ${(d1 / kv).toFixed(2)} |`);
    }
  };
  table(`Timed inside the Worker (Date.now() around the operations), median of ${ROUNDS} rounds:`, "ms");
  table(`Timed from the driver (HTTP request to response; includes making and checking the values), median of ${ROUNDS} rounds:`, "http_ms");

  console.log(`\nd1ns against its own statements sent by hand on the D1 binding (${SMALL_OPS} operations a side per round, ` +
    `interleaved in blocks of ${OVERHEAD_BLOCK}), median of ${OVERHEAD_ROUNDS} rounds:\n`);
  console.log("| operation | d1ns (ms) | by hand (ms) | d1ns / by hand (median of the rounds' ratios) | each round's ratio |");
  console.log("|---|---:|---:|---:|---|");
  for (const o of overheads) {
    const ratios = o.d1ns.map((d, i) => d / o.hand[i]);
    console.log(`| ${o.label} | ${fmt(median(o.d1ns))} | ${fmt(median(o.hand))} | ${median(ratios).toFixed(3)} | ${ratios.map((r) => r.toFixed(2)).join(", ")} |`);
  }

  await neighbours();

  await probeGets("after the rounds (medium and large values stored)");
  // Delete the medium and large values (their chunks go with them, by trigger) and look again.
  await sql("DB", "DELETE FROM _kv_entries WHERE (key >= 'large:' AND key < 'large;') OR (key >= 'medium:' AND key < 'medium;')");
  await probeGets("after deleting the medium and large values");
  await small("d1ns", "get").then((r) => console.log(`\nd1ns, ${SMALL_OPS} small gets after deleting the medium and large values: ${fmt(r.ms)} ms`));
  console.log(`\n${SMALL_OPS} small gets by hand on D1 (ms; rows_read summed), d1ns's get statement and its halves:\n`);
  console.log("| when | whole statement (UNION ALL) | entry row only | chunks only |");
  console.log("|---|---:|---:|---:|");
  for (const p of probes) {
    console.log(`| ${p.when} | ${fmt(p.union)} (${p.union_rows}) | ${fmt(p.entries)} (${p.entries_rows}) | ${fmt(p.chunks)} (${p.chunks_rows}) |`);
  }
  const puts = { run: [], batch: [] };
  for (let round = 0; round < OVERHEAD_ROUNDS; round++) {
    const r = await timed({ case: "probe_puts", count: SMALL_OPS, value_len: SMALL_LEN, block: OVERHEAD_BLOCK });
    puts.run.push(r.run_ms);
    puts.batch.push(r.batch_ms);
  }
  const batchOverRun = median(puts.batch.map((b, i) => b / puts.run[i]));
  console.log(
    `\n${SMALL_OPS} small puts by hand on D1 with d1ns's put statement, interleaved in blocks of ${OVERHEAD_BLOCK} (median of ${OVERHEAD_ROUNDS}): ` +
      `run() ${fmt(median(puts.run))} ms, batch() of one statement ${fmt(median(puts.batch))} ms; batch() / run() ${batchOverRun.toFixed(3)}`,
  );
  await restoreLarge();

  // Where a d1ns get of a large value spends its time (d1ns side only).
  console.log(`\nd1ns get, by phase (median of 3 reads; worker/src/bench.rs, profile):\n`);
  console.log("| value | whole get | inside batch() | D1 call to JS result | serde decode (d1ns's way) | one Uint8Array copy |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const [name, size] of LARGE) {
    for (const kind of KINDS) {
      const p = await timed({ case: "profile", kind, key: `large:${kind}:${size}`, size, seed: 1000 + ROUNDS - 1 });
      console.log(`| ${name} ${kind} | ${fmt(p.d1ns_get_ms)} | ${fmt(p.d1ns_batch_ms)} | ${fmt(p.raw_all_ms)} | ${fmt(p.serde_decode_ms)} | ${fmt(p.typed_array_decode_ms)} |`);
    }
  }
  // A bytes value in one row: D1's BLOB (an array of numbers in JS) against hex text.
  console.log(`\nA 1 MiB bytes value straight on the D1 binding, BLOB against hex text (median of 3):\n`);
  const b = await timed({ case: "blob_profile", size: MIB, seed: 7 });
  console.log("| | put (ms) | get (ms) |");
  console.log("|---|---:|---:|");
  console.log(`| bound as Uint8Array, read as BLOB (d1ns now) | ${fmt(b.put_blob_ms)} | ${fmt(b.get_blob_ms)} |`);
  console.log(`| bound as hex text, unhex() / hex() in SQL | ${fmt(b.put_hex_ms)} | ${fmt(b.get_hex_ms)} |`);
  console.log();
}

// ---------------------------------------------------------------- the server

// ---------------------------------------------------------------- --bench-edge: reads close to users (R12)

// `node driver.mjs --bench-edge` (or `bash scripts/workerd-e2e.sh --bench-edge`): small gets through
// Workers KV (wrangler's local KV), through d1ns, and through d1ns with the edge cache and
// `cache_ttl(60)` (every key cached by a warm-up pass), side by side in the same rounds, the side
// that goes first rotating; then the D1 calls of cached reads, counted by `Instrumented`.
async function runEdgeBench() {
  current = "bench-edge";
  const sides = ["kv", "d1ns", "d1ns_cached"];
  for (const side of ["kv", "d1ns"]) await small(side, "put");
  // Warm-up: the isolate, KV's storage, d1ns's table, and every key into the edge cache.
  for (const side of sides) await small(side, "get");
  const samples = Object.fromEntries(sides.map((side) => [side, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = [...sides.slice(round % 3), ...sides.slice(0, round % 3)];
    for (const side of order) samples[side].push((await small(side, "get")).ms);
    console.log(`round ${round + 1}/${ROUNDS} (${order.join(", ")})`);
  }
  const perGet = Object.fromEntries(sides.map((side) => [side, median(samples[side]) / SMALL_OPS]));
  const labels = { kv: "Workers KV get (local KV)", d1ns: "d1ns get", d1ns_cached: "d1ns get, cache_ttl(60), edge cache hit" };
  console.log(`\nmedian of ${ROUNDS} rounds of ${SMALL_OPS} gets of ${SMALL_LEN}-byte text, timed inside the Worker:\n`);
  console.log("| read | ms per get | d1ns get ÷ this | KV get ÷ this |");
  console.log("|---|---:|---:|---:|");
  for (const side of sides) {
    const ms = perGet[side];
    console.log(`| ${labels[side]} | ${ms.toFixed(3)} | ${(perGet.d1ns / ms).toFixed(2)} | ${(perGet.kv / ms).toFixed(2)} |`);
  }
  const keys = Array.from({ length: 100 }, (_, i) => `small:${String(i).padStart(5, "0")}`);
  const counted = await ops({ edge_cache: "bench" }, keys.map((key) => ({ op: "get", key, cache_ttl: 60 })));
  const calls = counted.reduce((sum, r) => sum + r.cost.calls, 0);
  const rows = counted.reduce((sum, r) => sum + r.cost.rows_read, 0);
  check("every counted cached read found its value", counted.every((r) => r.ok && typeof r.result.value === "string"), true);
  console.log(`\nD1 per cached read (Instrumented, ${keys.length} reads): ${calls / keys.length} calls, ${rows / keys.length} rows read`);
}

// ---------------------------------------------------------------- --bench-shards: writers over 1 and 3 databases (S9)

// `node driver.mjs --bench-shards` (or `bash scripts/workerd-e2e.sh --bench-shards`): 8 clients at
// once, each sending requests of 50 puts of 100-byte values, through a namespace over one local D1
// database and over three; the layouts alternate over the rounds, median puts/s per layout.
async function runShardBench() {
  current = "bench-shards";
  const CLIENTS = 8;
  const REQUESTS = 5;
  const PER_REQUEST = 50;
  const layouts = [["DB"], ["DB", "DB2", "DB3"]];
  const value = "x".repeat(100);
  const samples = layouts.map(() => []);
  let calls = null;
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    for (const l of order) {
      const opts = { namespace: `bench_sh${layouts[l].length}`, shards: layouts[l] };
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, c) => {
          for (let r = 0; r < REQUESTS; r++) {
            const list = Array.from({ length: PER_REQUEST }, (_, i) => ({ op: "put", key: `c${c}:r${r}:${i}:${round}`, text: value }));
            const results = await ops(opts, list);
            if (!results.every((x) => x.ok)) throw new Error(`a put failed: ${JSON.stringify(results.find((x) => !x.ok))}`);
            if (l === 1 && calls === null) calls = results.slice(-10).map((x) => x.cost.calls);
          }
        }),
      );
      samples[l].push((CLIENTS * REQUESTS * PER_REQUEST) / ((performance.now() - started) / 1000));
    }
    console.log(`round ${round + 1}/${ROUNDS}`);
  }
  const perSec = samples.map(median);
  console.log(`\n${CLIENTS} clients at once, ${REQUESTS} requests of ${PER_REQUEST} puts each (100-byte values), median of ${ROUNDS} rounds:\n`);
  console.log("| local D1 databases | puts/s | ratio to 1 |");
  console.log("|---:|---:|---:|");
  for (const [l, layout] of layouts.entries()) console.log(`| ${layout.length} | ${Math.round(perSec[l])} | ${(perSec[l] / perSec[0]).toFixed(2)} |`);
  console.log(`\nD1 calls per put over 3 shards: ${JSON.stringify(calls)}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

let server = null;

async function startServer() {
  fs.mkdirSync(STATE, { recursive: true });
  // A fresh D1 state directory every run: the suite starts from an empty database.
  const persist = path.join(STATE, "d1");
  fs.rmSync(persist, { recursive: true, force: true });
  const home = path.join(STATE, "home");
  fs.mkdirSync(home, { recursive: true });
  const port = Number(process.env.D1NS_WORKERD_PORT) || (await freePort());
  const logPath = path.join(STATE, "wrangler.log");
  const log = fs.openSync(logPath, "w");
  const child = spawn(
    process.execPath,
    [WRANGLER, "dev", "--local", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persist, "--show-interactive-dev-session=false"],
    {
      cwd: HERE,
      detached: true, // its own process group, so that stopping it stops workerd too
      stdio: ["ignore", log, log],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", HOME: home, NO_COLOR: "1" },
    },
  );
  server = child;
  fs.writeFileSync(path.join(STATE, "wrangler.pid"), `${child.pid}\n`);
  let exited = null;
  child.once("exit", (code, signal) => (exited = signal ?? code));
  base = `http://127.0.0.1:${port}`;
  const started = Date.now();
  while (Date.now() - started < 90_000) {
    if (exited !== null) break;
    try {
      const res = await fetch(`${base}/ready`);
      if (res.ok && (await res.text()) === "ok") {
        console.log(`workerd ready on ${base} (pid ${child.pid}, ${Date.now() - started} ms)`);
        return;
      }
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  console.log(fs.readFileSync(logPath, "utf8").split("\n").slice(-40).join("\n"));
  throw new Error(exited !== null ? `wrangler exited (${exited}) before it was ready` : "wrangler was not ready within 90 s");
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const gone = new Promise((resolve) => server.once("exit", resolve));
  try {
    process.kill(-server.pid, "SIGTERM");
  } catch {
    return;
  }
  const timeout = sleep(5000).then(() => "timeout");
  if ((await Promise.race([gone, timeout])) === "timeout") {
    try {
      process.kill(-server.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  fs.rmSync(path.join(STATE, "wrangler.pid"), { force: true });
}

// A driver stopped by a signal still stops its server.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (server) {
      try {
        process.kill(-server.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    process.exit(130);
  });
}

// ---------------------------------------------------------------- main

const BENCH = process.argv.includes("--bench");
const BENCH_EDGE = process.argv.includes("--bench-edge");
const BENCH_SHARDS = process.argv.includes("--bench-shards");
const only = process.argv.slice(2).find((arg) => !arg.startsWith("--"));
if (SESSION) console.log(`every namespace on a D1 session started "${SESSION}" (R1)`);
const t0 = Date.now();
try {
  await startServer();
  if (BENCH) await runBench();
  if (BENCH_EDGE) await runEdgeBench();
  if (BENCH_SHARDS) await runShardBench();
  for (const s of BENCH || BENCH_EDGE || BENCH_SHARDS ? [] : scenarios) {
    // The first scenario runs always: it meets the empty database and learns the schema size.
    if (only && !s.name.includes(only) && s !== scenarios[0]) continue;
    // The Rust-side scenarios make their own namespaces on the binding: run once, in the plain pass.
    if ((SESSION || SHARDED) && s.name.startsWith("Rust-side")) continue;
    if (SHARDED && s !== scenarios[0] && !SHARDABLE.some((name) => s.name.startsWith(name))) continue;
    current = s.name;
    const started = Date.now();
    const before = failed;
    try {
      await s.run();
    } catch (e) {
      failed++;
      console.log(`  FAIL ${s.name}: ${e.stack ?? e}`);
    }
    console.log(`${failed === before ? "ok  " : "FAIL"} ${s.name} (${Date.now() - started} ms)`);
  }
  if (!BENCH && !BENCH_EDGE && !BENCH_SHARDS && !only) costRules();
  if (!BENCH && !BENCH_EDGE && !BENCH_SHARDS) printCostTable();
} catch (e) {
  failed++;
  console.log(`FAIL: ${e.stack ?? e}`);
} finally {
  await stopServer();
}
console.log(`suite time ${((Date.now() - t0) / 1000).toFixed(1)} s${skipped ? `; ${skipped} skipped (see SKIP lines)` : ""}`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
