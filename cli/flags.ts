/**
 * Command-line flag parsing on top of `node:util` parseArgs, with errors that
 * name the flag and the fix.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "../core/errors.ts";
import type { WebhookTarget } from "../server/webhooks.ts";

/** Declaration of one flag. */
export interface FlagSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
}

/** Parsed flags and positionals. */
export interface ParsedFlags {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/**
 * Parses `args` for `command` (e.g. "earthworm mock"). Unknown flags and
 * missing values throw a {@linkcode UsageError}. `--help` is always accepted.
 */
export function parseFlags(
  command: string,
  args: string[],
  spec: Record<string, FlagSpec>,
  opts: { positionals?: boolean } = {},
): ParsedFlags {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...spec, help: { type: "boolean", short: "h" } },
      allowPositionals: opts.positionals ?? false,
      strict: true,
    });
    return { values: values as ParsedFlags["values"], positionals };
  } catch (err) {
    throw new UsageError(describeParseError(command, err));
  }
}

function describeParseError(command: string, err: unknown): string {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const help = `run "${command} --help" to see the flags`;
  const flag = /'(-[^']*)'/.exec(message)?.[1] ?? "";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `Unknown flag "${
        flag.split(/[ ,]/)[0]
      }" for "${command}": ${help}`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `Unexpected argument ${
        /'([^']*)'/.exec(message)?.[0] ?? ""
      } for "${command}": ${help}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return `Flag "${
        flag.split(/[ ,]/)[0]
      }" of "${command}" needs a value: ${help}`;
    default:
      return `Cannot parse the flags of "${command}": ${message}: ${help}`;
  }
}

/** Reads a string flag, or `fallback` when absent. */
export function stringFlag(
  flags: ParsedFlags,
  name: string,
  fallback: string,
): string;
export function stringFlag(
  flags: ParsedFlags,
  name: string,
): string | undefined;
export function stringFlag(
  flags: ParsedFlags,
  name: string,
  fallback?: string,
): string | undefined {
  const v = flags.values[name];
  if (Array.isArray(v)) return v[v.length - 1] ?? fallback;
  return typeof v === "string" ? v : fallback;
}

/** Reads a repeatable string flag. */
export function listFlag(flags: ParsedFlags, name: string): string[] {
  const v = flags.values[name];
  if (Array.isArray(v)) return v;
  return typeof v === "string" ? [v] : [];
}

/** Reads a number flag within [min, max], or `fallback` when absent. */
export function numberFlag(
  flags: ParsedFlags,
  name: string,
  fallback: number,
  range: { min: number; max: number; integer?: boolean },
): number {
  const raw = stringFlag(flags, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  const kind = range.integer ? "a whole number" : "a number";
  if (
    raw.trim() === "" || !Number.isFinite(n) ||
    (range.integer && !Number.isInteger(n))
  ) {
    throw new UsageError(`Flag "--${name}" must be ${kind}, got "${raw}"`);
  }
  if (n < range.min || n > range.max) {
    throw new UsageError(
      `Flag "--${name}" must be between ${range.min} and ${range.max}, got "${raw}"`,
    );
  }
  return n;
}

/**
 * Flags of every command that serves the UI: `--port`, `--host`,
 * `--retention`, and the alert webhooks.
 */
export const SERVE_FLAGS: Record<string, FlagSpec> = {
  port: { type: "string" },
  host: { type: "string" },
  retention: { type: "string" },
  "alert-webhook": { type: "string", multiple: true },
  "alert-webhook-json": { type: "string", multiple: true },
  "external-url": { type: "string" },
  "per-heart-metrics": { type: "boolean" },
};

/** Help lines of the alert webhook and metrics flags, aligned at `column`. */
export function outputHelp(column: number): string {
  const line = (flag: string, text: string) =>
    `  ${flag.padEnd(column - 2)}${text}`;
  return [
    line(
      "--alert-webhook URL",
      "POST expired/recovered/diagnosis alerts there in Alertmanager's",
    ),
    line("", "webhook format; repeat for several"),
    line(
      "--alert-webhook-json URL",
      "POST the same notifications as plain JSON",
    ),
    line("--external-url URL", "Base URL of this UI for links in alerts"),
    line(
      "--per-heart-metrics",
      "One /metrics series per heart (default: aggregated)",
    ),
  ].join("\n");
}

/** Where and how a command serves. */
export interface ServeSettings {
  port: number;
  host: string;
  /** Beat history per heart in milliseconds. */
  retentionMs: number;
  /** Alert receivers. */
  webhooks: WebhookTarget[];
  /** Base URL of the UI for links in alerts, when given. */
  externalUrl?: string;
  /** One metric series per heart. */
  perHeartMetrics: boolean;
}

/** Reads {@linkcode SERVE_FLAGS} with the command's default host. */
export function serveSettings(
  flags: ParsedFlags,
  defaultHost: string,
): ServeSettings {
  return {
    port: numberFlag(flags, "port", 8080, {
      min: 0,
      max: 65535,
      integer: true,
    }),
    host: hostFlag(flags, defaultHost),
    retentionMs:
      numberFlag(flags, "retention", 3600, { min: 10, max: 7 * 86_400 }) * 1000,
    perHeartMetrics: flags.values["per-heart-metrics"] === true,
    webhooks: [
      ...listFlag(flags, "alert-webhook").map((url) => ({
        url: httpUrlFlag("alert-webhook", url),
        format: "alertmanager" as const,
      })),
      ...listFlag(flags, "alert-webhook-json").map((url) => ({
        url: httpUrlFlag("alert-webhook-json", url),
        format: "json" as const,
      })),
    ],
    ...(stringFlag(flags, "external-url") !== undefined && {
      externalUrl: httpUrlFlag(
        "external-url",
        stringFlag(flags, "external-url")!,
      )
        .replace(/\/+$/, ""),
    }),
  };
}

/** Checks that a flag's value is an http(s) URL. */
export function httpUrlFlag(name: string, value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new UsageError(
      `Flag "--${name}" must be an http:// or https:// URL, got "${value}"`,
    );
  }
  return value;
}

/**
 * Reads `--host`: an IPv4 or IPv6 address or a host name. Whether a name
 * resolves is found out when listening.
 */
export function hostFlag(flags: ParsedFlags, fallback: string): string {
  const host = stringFlag(flags, "host", fallback);
  if (!isListenHost(host)) {
    throw new UsageError(
      `Flag "--host" must be an IP address or host name to listen on, got "${host}": use 127.0.0.1 for this machine only, or 0.0.0.0 for every interface`,
    );
  }
  return host;
}

/** Whether `host` is an IPv4 address, an IPv6 address or a DNS host name. */
export function isListenHost(host: string): boolean {
  if (/^[\d.]+$/.test(host)) {
    const parts = host.split(".");
    return parts.length === 4 &&
      parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
  }
  if (host.includes(":")) {
    try {
      return new URL(`http://[${host}]/`).hostname !== "";
    } catch {
      return false;
    }
  }
  return host.length <= 253 &&
    host.split(".").every((label) =>
      /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/.test(label)
    );
}
