/**
 * Bundles the Preact + Chart.js UI into `ui/dist/app.js` with
 * `deno bundle --platform browser --minify`. The bundle is committed because
 * the server embeds it with a text import; `--check` rebuilds into a
 * temporary directory and fails when the committed bundle is stale.
 *
 * `deno run --allow-read --allow-write --allow-run --allow-env ui/build.ts [--check]`
 *
 * @module
 */

const UI_DIR = new URL(".", import.meta.url);
/** Entry module of the UI. */
export const ENTRY: URL = new URL("main.tsx", UI_DIR);
const CONFIG = new URL("../deno.json", UI_DIR).pathname;
/** The committed bundle. */
export const BUNDLE: URL = new URL("dist/app.js", UI_DIR);

/** Type-checks the UI (bundling alone does not); throws with deno's output on errors. */
export async function checkTypes(): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", "--config", CONFIG, ENTRY.pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`The UI has type errors: ${text}`);
  }
}

/** Type-checks and bundles the UI into `outFile`; throws with deno's output when either fails. */
export async function bundleUi(outFile: string): Promise<void> {
  await checkTypes();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--minify",
      "--config",
      CONFIG,
      "-o",
      outFile,
      ENTRY.pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`Cannot bundle the UI from "${ENTRY.pathname}": ${text}`);
  }
}

/** Result of comparing a fresh bundle with the committed one. */
export interface BundleCheck {
  fresh: boolean;
  committedBytes: number;
  rebuiltBytes: number;
}

/** Rebuilds the UI into a temporary directory and compares it with the committed bundle. */
export async function checkBundle(): Promise<BundleCheck> {
  const dir = await Deno.makeTempDir({ prefix: "earthworm-ui-" });
  try {
    const outFile = `${dir}/app.js`;
    await bundleUi(outFile);
    const rebuilt = await Deno.readFile(outFile);
    let committed: Uint8Array;
    try {
      committed = await Deno.readFile(BUNDLE);
    } catch {
      committed = new Uint8Array();
    }
    return {
      fresh: equalBytes(rebuilt, committed),
      committedBytes: committed.length,
      rebuiltBytes: rebuilt.length,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function main(args: string[]): Promise<number> {
  if (args.includes("--check")) {
    const result = await checkBundle();
    if (!result.fresh) {
      console.error(
        `ui/dist/app.js is stale (${result.committedBytes} bytes committed, ` +
          `${result.rebuiltBytes} bytes rebuilt): run "deno task build:ui" and commit it`,
      );
      return 1;
    }
    console.error(
      `ui/dist/app.js is up to date (${result.rebuiltBytes} bytes)`,
    );
    return 0;
  }
  const started = performance.now();
  await bundleUi(BUNDLE.pathname);
  const size = (await Deno.stat(BUNDLE)).size;
  const ms = Math.round(performance.now() - started);
  console.error(`wrote ui/dist/app.js (${size} bytes) in ${ms} ms`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
}
