/**
 * The `earthworm` command dispatcher: picks the command module, turns usage
 * and input errors into one-line messages with exit code 2, and never shows a
 * stack trace unless `EARTHWORM_DEBUG=1`.
 *
 * @module
 */

import { EXIT_USAGE, InputError, UsageError } from "../core/errors.ts";
import { VERSION } from "./version.ts";

/** A command: takes its arguments, returns the exit code. */
export type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<
  string,
  { summary: string; load: () => Promise<Command> }
> = {
  mock: {
    summary:
      "Run on a simulated cluster (or replay a recording) and serve the UI",
    load: async () => (await import("./mock.ts")).mockCommand,
  },
  watch: {
    summary: "Watch a real cluster from a kubeconfig and serve the UI",
    load: async () => (await import("./watch.ts")).watchCommand,
  },
  agent: {
    summary: "In-cluster agent: elect a leader, watch Leases, serve the UI",
    load: async () => (await import("./agent.ts")).agentCommand,
  },
  probe: {
    summary: "Load the eBPF program here and print the kubelet's wire events",
    load: async () => (await import("./probe.ts")).probeCommand,
  },
  "parse-leases": {
    summary:
      "Turn recorded Lease YAML into the JSON timeline that mock --replay plays",
    load: async () => (await import("./parse_leases.ts")).parseLeasesCommand,
  },
};

/** Top-level help text. */
export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) =>
    `  ${name.padEnd(width)}  ${c.summary}`
  );
  return [
    "Earthworm: live cardiograms of a Kubernetes cluster's Lease heartbeats",
    "",
    "Usage: earthworm <command> [flags]",
    "",
    "Commands:",
    ...lines,
    "",
    'Run "earthworm <command> --help" for the flags of a command.',
    "",
  ].join("\n");
}

/** Runs the command line `args` and returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (
    name === undefined || name === "--help" || name === "-h" || name === "help"
  ) {
    console.log(usage());
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === "--version" || name === "version") {
    console.log(`earthworm ${VERSION}`);
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    console.error(
      `earthworm: Unknown command "${name}": run "earthworm --help" to see the commands`,
    );
    return EXIT_USAGE;
  }
  try {
    const command = await entry.load();
    return await command(rest);
  } catch (err) {
    return reportError(err);
  }
}

/** Prints `err` as one line and returns the matching exit code. */
export function reportError(err: unknown): number {
  if (err instanceof UsageError || err instanceof InputError) {
    console.error(`earthworm: ${err.message}`);
    return EXIT_USAGE;
  }
  if (Deno.env.get("EARTHWORM_DEBUG") === "1") console.error(err);
  else {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`earthworm: ${message.split("\n")[0]}`);
  }
  return 1;
}
