/**
 * The folders are layers, like a network stack: `core/` imports nothing of
 * ours; the sources (`kube/`, `sim/`, `wire/`, `bpf/`) import only `core/`;
 * `server/` imports the sources and `core/`; `cli/` imports everything below
 * it; `main.ts` imports `cli/`. `ui/` imports only the shared API types and the
 * stream's codec.
 * Unit tests beside the modules may also use the test support in `tests/`.
 * This test reads every import of every module and fails on one against
 * that direction, or on a cycle between folders.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** Rank of each layer: a folder may import only folders of a lower rank. */
const RANK: Record<string, number> = {
  core: 0,
  kube: 1,
  sim: 1,
  wire: 1,
  bpf: 1,
  server: 2,
  cli: 3,
  "main.ts": 4,
};

/** What `ui/` may import from outside itself. */
const UI_ALLOWED = new Set(["core/api_types.ts", "core/stream_codec.ts"]);

interface Import {
  from: string;
  to: string;
  /** An asset (`with { type: "text" | "bytes" }`), not code. */
  asset: boolean;
}

const IMPORT_RE =
  /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\s+from\s+)?["'](\.{1,2}\/[^"']+)["']([^;\n]*)|import\(\s*["'](\.{1,2}\/[^"']+)["']/gm;

async function modules(): Promise<string[]> {
  const out: string[] = ["main.ts"];
  for (const folder of [...Object.keys(RANK), "ui"]) {
    if (folder.endsWith(".ts")) continue;
    for await (const entry of walk(folder)) out.push(entry);
  }
  return out;
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory && e.name !== "dist") yield* walk(path);
    else if (e.isFile && /\.tsx?$/.test(e.name)) yield path;
  }
}

function resolve(from: string, spec: string): string {
  const url = new URL(spec, new URL(from, ROOT));
  return url.pathname.slice(ROOT.pathname.length);
}

async function imports(): Promise<Import[]> {
  const out: Import[] = [];
  for (const file of await modules()) {
    const text = await Deno.readTextFile(new URL(file, ROOT));
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[3];
      if (!spec) continue;
      out.push({
        from: file,
        to: resolve(file, spec),
        asset: /with\s*\{\s*type:/.test(m[2] ?? ""),
      });
    }
  }
  return out;
}

function folderOf(path: string): string {
  return path.includes("/") ? path.slice(0, path.indexOf("/")) : path;
}

/** The import against the layering, or null when `i` is allowed. */
function violation(i: Import): string | null {
  const from = folderOf(i.from);
  const to = folderOf(i.to);
  if (from === to) return null;
  // A unit test may use the shared test support (prerequisite checks).
  if (to === "tests" && i.from.endsWith("_test.ts")) return null;
  if (from === "ui") {
    return UI_ALLOWED.has(i.to)
      ? null
      : `${i.from} imports ${i.to}: ui/ may import only ${[...UI_ALLOWED]}`;
  }
  // The server embeds the built UI as text: an asset, not a code dependency.
  if (to === "ui") {
    return i.asset && from === "server"
      ? null
      : `${i.from} imports ${i.to}: only server/ embeds ui/, as assets`;
  }
  const rf = RANK[from];
  const rt = RANK[to];
  if (rf === undefined || rt === undefined) {
    return `${i.from} imports ${i.to}: ${to}/ is not a layer`;
  }
  return rt < rf
    ? null
    : `${i.from} imports ${i.to}: ${from} (layer ${rf}) may import only lower layers, ${to} is layer ${rt}`;
}

Deno.test("every import points down the layers: core ← kube/sim/wire/bpf ← server ← cli ← main.ts", async () => {
  const all = await imports();
  assert.ok(all.length > 100, `found only ${all.length} imports`);
  const bad = all.map(violation).filter((v) => v !== null);
  assert.deepEqual(bad, []);
});

Deno.test("core imports nothing of ours and ui imports only the shared API types and the stream codec", async () => {
  const all = await imports();
  const core = all.filter((i) =>
    folderOf(i.from) === "core" && folderOf(i.to) !== "core"
  );
  assert.deepEqual(core, []);
  const ui = all.filter((i) =>
    folderOf(i.from) === "ui" && folderOf(i.to) !== "ui"
  ).map((i) => i.to);
  assert.deepEqual([...new Set(ui)].sort(), [...UI_ALLOWED].sort());
});

Deno.test("the folders import each other without a cycle", async () => {
  const edges = new Map<string, Set<string>>();
  for (const i of await imports()) {
    const a = folderOf(i.from);
    const b = folderOf(i.to);
    if (a === b || i.asset || b === "tests") continue;
    if (!edges.has(a)) edges.set(a, new Set());
    edges.get(a)!.add(b);
  }
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (node: string): string[] | null => {
    if (state.get(node) === "done") return null;
    if (state.get(node) === "visiting") {
      return [...path.slice(path.indexOf(node)), node];
    }
    state.set(node, "visiting");
    path.push(node);
    for (const next of edges.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, "done");
    return null;
  };
  for (const node of edges.keys()) {
    const cycle = visit(node);
    assert.equal(cycle, null, `cycle between folders: ${cycle?.join(" → ")}`);
  }
});

Deno.test("the import checker itself rejects an upward import, a peer import and a ui import", () => {
  assert.match(
    violation({ from: "core/log.ts", to: "server/api.ts", asset: false })!,
    /core \(layer 0\)/,
  );
  assert.match(
    violation({ from: "wire/x.ts", to: "bpf/y.ts", asset: false })!,
    /may import only lower layers/,
  );
  assert.match(
    violation({ from: "ui/App.tsx", to: "server/heart.ts", asset: false })!,
    /ui\/ may import only/,
  );
  assert.equal(
    violation({ from: "server/assets.ts", to: "ui/style.css", asset: true }),
    null,
  );
  assert.equal(
    violation({ from: "cli/mock.ts", to: "sim/simulator.ts", asset: false }),
    null,
  );
  assert.equal(
    violation({ from: "bpf/x_test.ts", to: "tests/prereq.ts", asset: false }),
    null,
  );
  assert.match(
    violation({ from: "bpf/x.ts", to: "tests/prereq.ts", asset: false })!,
    /not a layer/,
  );
});
