/**
 * Finds and checks the kubeconfig before anything connects: the file given
 * with `--kubeconfig`, else the files in `$KUBECONFIG`, else
 * `~/.kube/config`, else the in-cluster ServiceAccount. Each file is read
 * through the guard of `core/input_file.ts` (regular files only, at most
 * {@linkcode MAX_KUBECONFIG_BYTES}), parsed, and checked for what
 * client-node would otherwise reject later or loop on: entries without
 * names, clusters without a server, a context naming a missing cluster, a
 * server that is not an http(s) URL, certificate files that are missing or
 * not regular files. Every problem is an {@linkcode InputError} with one line
 * naming the file, the field and the fix; no kubeconfig at all is one too,
 * instead of client-node's silent fallback to `http://localhost:8080`.
 *
 * @module
 */

import yaml from "js-yaml";
import { InputError } from "../core/errors.ts";
import {
  inputFileError,
  type InputFileKind,
  readInputText,
} from "../core/input_file.ts";

/** Largest kubeconfig read, in bytes (4 MiB: about a thousand clusters). */
export const MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024;

/** Where the in-cluster ServiceAccount's files are mounted. */
export const SERVICE_ACCOUNT_DIR =
  "/var/run/secrets/kubernetes.io/serviceaccount";

const KIND: InputFileKind = {
  what: "kubeconfig",
  maxBytes: MAX_KUBECONFIG_BYTES,
  expected: "a kubeconfig file",
  tooLargeFix: "pass the kubeconfig itself, or one with fewer clusters",
};

type Dict = Record<string, unknown>;

/** One kubeconfig file, read and checked. */
export interface KubeconfigFile {
  /** The path, as given. */
  path: string;
  /** Its folder, against which relative file paths in it resolve. */
  dir: string;
  /** Its text (client-node parses it again). */
  text: string;
  /** The parsed document. */
  doc: Dict;
}

/** An entry of a kubeconfig's `clusters`, `contexts` or `users`. */
export interface KubeconfigEntry {
  /** The entry's name. */
  name: string;
  /** Its `cluster`, `context` or `user` mapping. */
  body: Dict;
  /** The file holding it. */
  file: KubeconfigFile;
  /** Its field path, such as `clusters[2]`. */
  path: string;
}

/** The kubeconfig to use: its files and the context chosen from them. */
export interface Kubeconfig {
  /** The files, in `$KUBECONFIG` order: the first to define a name wins. */
  files: KubeconfigFile[];
  /** The chosen context. */
  context: KubeconfigEntry;
  /** The context's cluster, with a checked `server`. */
  cluster: KubeconfigEntry & { server: string };
  /** The context's user, when it names one that is defined. */
  user?: KubeconfigEntry;
}

/** Which kubeconfig to use. */
export interface KubeconfigOptions {
  /** The `--kubeconfig` file. */
  kubeconfig?: string;
  /** The `--context` name (default: the current context). */
  context?: string;
}

/**
 * Finds, reads and checks the kubeconfig (see the module doc). Returns
 * `"in-cluster"` when there is no kubeconfig but the process runs in a pod
 * with a ServiceAccount; throws an InputError when it cannot be used.
 */
export async function readKubeconfig(
  opts: KubeconfigOptions = {},
): Promise<Kubeconfig | "in-cluster"> {
  const found = await kubeconfigPaths(opts.kubeconfig);
  if (found === "in-cluster") return found;
  const files: KubeconfigFile[] = [];
  for (const path of found.paths) {
    files.push(
      await readKubeconfigFile(path, { ...KIND, missingFix: found.missingFix }),
    );
  }
  return chooseContext(files, opts.context);
}

async function kubeconfigPaths(
  explicit: string | undefined,
): Promise<{ paths: string[]; missingFix: string } | "in-cluster"> {
  if (explicit !== undefined) {
    return {
      paths: [explicit],
      missingFix: "check the path given to --kubeconfig",
    };
  }
  const env = Deno.env.get("KUBECONFIG");
  if (env) {
    const paths = env.split(":").filter((p) => p !== "");
    if (paths.length > 0) {
      return { paths, missingFix: "check the KUBECONFIG variable" };
    }
  }
  const home = Deno.env.get("HOME");
  const config = home ? `${home}/.kube/config` : undefined;
  if (config !== undefined && await exists(config)) {
    return { paths: [config], missingFix: "check the path" };
  }
  if (
    Deno.env.get("KUBERNETES_SERVICE_HOST") &&
    await exists(`${SERVICE_ACCOUNT_DIR}/token`)
  ) {
    return "in-cluster";
  }
  throw new InputError(
    `No kubeconfig found: KUBECONFIG is not set and ${
      config === undefined
        ? "neither is HOME"
        : `${JSON.stringify(config)} does not exist`
    }: pass --kubeconfig FILE or set KUBECONFIG`,
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads and checks one kubeconfig file (every entry, as client-node does). */
export async function readKubeconfigFile(
  path: string,
  kind: InputFileKind = KIND,
): Promise<KubeconfigFile> {
  const text = await readInputText(path, kind);
  const fail = (place: string, message: string): never => {
    throw inputFileError(KIND.what, path, place, message);
  };
  let loaded: unknown;
  try {
    loaded = yaml.load(text, { filename: path });
  } catch (err) {
    const e = err as {
      name?: string;
      reason?: string;
      mark?: { line: number; column: number };
    };
    if (e?.name !== "YAMLException") throw err;
    fail(
      e.mark ? `line ${e.mark.line + 1}, column ${e.mark.column + 1}` : "",
      `invalid YAML: ${
        (e.reason ?? "").split("\n")[0]
      }: fix the syntax there (indentation, quotes, brackets)`,
    );
  }
  const doc = dict(loaded);
  if (!doc) {
    fail(
      "",
      `expected a kubeconfig mapping (clusters, contexts, users), got ${
        describe(loaded)
      }: pass a kubeconfig such as ~/.kube/config`,
    );
  }
  const file: KubeconfigFile = {
    path,
    dir: path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".",
    text,
    doc: doc!,
  };
  for (const [list, field] of LISTS) {
    entries(file, list, field);
  }
  return file;
}

const LISTS = [
  ["clusters", "cluster"],
  ["contexts", "context"],
  ["users", "user"],
] as const;

/** Checks and returns the entries of `list` in `file`. */
function entries(
  file: KubeconfigFile,
  list: "clusters" | "contexts" | "users",
  field: "cluster" | "context" | "user",
): KubeconfigEntry[] {
  const fail = (place: string, message: string): never => {
    throw inputFileError(KIND.what, file.path, place, message);
  };
  const value = file.doc[list];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    fail(list, `expected a list, got ${describe(value)}`);
  }
  return (value as unknown[]).map((item, i) => {
    const path = `${list}[${i}]`;
    const entry = dict(item);
    if (!entry) fail(path, `expected a mapping, got ${describe(item)}`);
    const name = entry!.name;
    if (typeof name !== "string" || name === "") {
      fail(`${path}.name`, `the ${field} has no name: add one`);
    }
    const body = dict(entry![field]);
    if (!body && field !== "user") {
      fail(
        `${path}.${field}`,
        `${field} ${JSON.stringify(name)} has no settings: add its ${
          field === "cluster" ? "server" : "cluster"
        }`,
      );
    }
    if (field === "cluster" && !nonEmpty(body!.server)) {
      fail(
        `${path}.cluster.server`,
        `cluster ${
          JSON.stringify(name)
        } has no server: add the API server's URL, such as https://127.0.0.1:6443`,
      );
    }
    if (field === "context" && !nonEmpty(body!.cluster)) {
      fail(
        `${path}.context.cluster`,
        `context ${
          JSON.stringify(name)
        } names no cluster: add the name of one under clusters`,
      );
    }
    return { name: name as string, body: body ?? {}, file, path };
  });
}

/** Picks the context (first file to define a name wins, as with kubectl). */
function chooseContext(
  files: KubeconfigFile[],
  wanted: string | undefined,
): Kubeconfig {
  const first = files[0]!;
  const all = (list: "clusters" | "contexts" | "users") => {
    const field = LISTS.find(([l]) => l === list)![1];
    const byName = new Map<string, KubeconfigEntry>();
    for (const file of files) {
      for (const e of entries(file, list, field)) {
        if (!byName.has(e.name)) byName.set(e.name, e);
      }
    }
    return byName;
  };
  const contexts = all("contexts");
  const names = [...contexts.keys()].map((n) => JSON.stringify(n)).join(", ");
  let name = wanted;
  let from = first;
  if (name === undefined) {
    const current = files.find((f) => nonEmpty(f.doc["current-context"]));
    if (!current) {
      throw inputFileError(
        KIND.what,
        first.path,
        "",
        contexts.size === 0
          ? 'it defines no context: add one with "kubectl config set-context", or pass another kubeconfig'
          : `it sets no current-context: pass --context with one of ${names}`,
      );
    }
    from = current;
    name = current.doc["current-context"] as string;
  }
  const context = contexts.get(name);
  if (!context) {
    throw inputFileError(
      KIND.what,
      from.path,
      wanted === undefined ? "current-context" : "",
      contexts.size === 0
        ? `it has no context ${
          JSON.stringify(name)
        }: it defines none; add one with "kubectl config set-context"`
        : wanted === undefined
        ? `${
          JSON.stringify(name)
        } is not under contexts: pass --context with one of ${names}`
        : `it has no context ${
          JSON.stringify(name)
        }: pass one of ${names} to --context`,
    );
  }
  const clusterName = context.body.cluster as string;
  const cluster = all("clusters").get(clusterName);
  if (!cluster) {
    throw inputFileError(
      KIND.what,
      context.file.path,
      `${context.path}.context.cluster`,
      `context ${JSON.stringify(context.name)} names cluster ${
        JSON.stringify(clusterName)
      }, which is not under clusters: add it, or pick another context with --context`,
    );
  }
  const server = checkServer(cluster);
  const userName = context.body.user;
  const user = typeof userName === "string"
    ? all("users").get(userName)
    : undefined;
  return {
    files,
    context,
    cluster: { ...cluster, server },
    ...(user && { user }),
  };
}

function checkServer(cluster: KubeconfigEntry): string {
  const server = String(cluster.body.server);
  let url: URL | undefined;
  try {
    url = new URL(server);
  } catch {
    url = undefined;
  }
  if (
    !url || (url.protocol !== "https:" && url.protocol !== "http:") ||
    url.hostname === ""
  ) {
    throw inputFileError(
      KIND.what,
      cluster.file.path,
      `${cluster.path}.cluster.server`,
      `expected a URL such as "https://127.0.0.1:6443", got ${
        JSON.stringify(server)
      }: fix the server address`,
    );
  }
  return server;
}

/**
 * Checks that each file the chosen cluster and user point at (CA, client
 * certificate and key, token file) is a regular file, so client-node
 * neither fails on it later nor blocks on a pipe.
 */
export async function checkReferencedFiles(kc: Kubeconfig): Promise<void> {
  const refs: [KubeconfigEntry | undefined, string, string][] = [
    [kc.cluster, "cluster", "certificate-authority"],
    [kc.user, "user", "client-certificate"],
    [kc.user, "user", "client-key"],
    [kc.user, "user", "tokenFile"],
    [kc.user, "user", "token-file"],
  ];
  for (const [entry, field, key] of refs) {
    const value = entry?.body[key];
    if (!entry || typeof value !== "string" || value === "") continue;
    const path = resolvePath(entry.file, value);
    let problem: string | undefined;
    try {
      const info = await Deno.stat(path);
      if (!info.isFile) problem = "is not a regular file";
    } catch (err) {
      problem = err instanceof Deno.errors.NotFound
        ? "does not exist"
        : `cannot be read (${err instanceof Error ? err.message : err})`;
    }
    if (problem !== undefined) {
      throw inputFileError(
        KIND.what,
        entry.file.path,
        `${entry.path}.${field}.${key}`,
        `${
          JSON.stringify(path)
        } ${problem}: fix the path (relative paths start at the kubeconfig's folder)`,
      );
    }
  }
}

/** Resolves a path written in `file` against the file's folder. */
export function resolvePath(file: KubeconfigFile, path: string): string {
  return path.startsWith("/") ? path : `${file.dir}/${path}`;
}

function dict(v: unknown): Dict | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? v as Dict
    : undefined;
}

function nonEmpty(v: unknown): v is string {
  return typeof v === "string" && v !== "";
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") {
    return `the string ${JSON.stringify(value.slice(0, 40))}`;
  }
  return typeof value === "object"
    ? "a mapping"
    : `the ${typeof value} ${value}`;
}
