/**
 * `earthworm parse-leases FILE [-o OUT]`: turns recorded Lease YAML or JSON
 * into the JSON beat timeline that `earthworm mock --replay` plays.
 *
 * @module
 */

import { readLeaseFile } from "../sim/lease_file.ts";
import {
  buildTimeline,
  formatTimeline,
  timelineStats,
} from "../sim/timeline.ts";
import { getLogger } from "../core/log.ts";
import { UsageError } from "../core/errors.ts";
import { parseFlags, stringFlag } from "./flags.ts";

const COMMAND = "earthworm parse-leases";

/** Help text of `earthworm parse-leases`. */
export const PARSE_LEASES_HELP = `Usage: ${COMMAND} FILE [-o OUT]

Turn recorded Leases into the JSON beat timeline that "earthworm mock --replay"
plays. FILE (or - for standard input) is YAML or JSON holding one of:
  - the output of "kubectl get leases -A -o yaml" (a List),
  - several YAML documents separated by ---, each a Lease or a List,
  - items: [ {metadata, spec}, ... ] with many snapshots of the same Lease.

Each distinct spec.renewTime of a Lease becomes one event at that time
(ADDED first, then MODIFIED). Snapshots without renewTime are skipped with a
warning. Files up to 64 MiB.

Flags:
  -o, --output OUT   write the timeline to OUT instead of standard output
  -h, --help         show this help

Example:
  kubectl get leases -A -o yaml > leases.yaml
  ${COMMAND} leases.yaml -o timeline.json
  earthworm mock --replay timeline.json
`;

/** Runs `earthworm parse-leases` with `args`; returns the exit code. */
export async function parseLeasesCommand(args: string[]): Promise<number> {
  const flags = parseFlags(COMMAND, args, {
    output: { type: "string", short: "o" },
  }, { positionals: true });
  if (flags.values.help) {
    console.log(PARSE_LEASES_HELP);
    return 0;
  }
  const [file, ...extra] = flags.positionals;
  if (file === undefined) {
    throw new UsageError(
      `Missing the lease file for "${COMMAND}": pass a file such as the output of "kubectl get leases -A -o yaml" (run "${COMMAND} --help")`,
    );
  }
  if (extra.length > 0) {
    throw new UsageError(
      `"${COMMAND}" reads one file, got ${flags.positionals.length}: pass one file, or join them with --- between documents`,
    );
  }
  const output = stringFlag(flags, "output");
  if (output === "") {
    throw new UsageError(
      `Flag "--output" of "${COMMAND}" needs a file name: omit it to write to standard output`,
    );
  }

  const snapshots = await readLeaseFile(file);
  const source = file === "-" ? "standard input" : file;
  const { timeline, warnings } = buildTimeline(snapshots, source);
  const text = formatTimeline(timeline);
  const bytes = new TextEncoder().encode(text);

  if (output === undefined || output === "-") {
    if (!await writeStdout(bytes)) return 0;
  } else {
    try {
      await Deno.writeFile(output, bytes);
    } catch (err) {
      const reason = err instanceof Error ? err.message.split("\n")[0] : "";
      throw new UsageError(
        `Cannot write the timeline to "${output}": ${reason}: check that its folder exists and is writable`,
      );
    }
  }

  const log = getLogger("parse-leases");
  for (const warning of warnings) log.warn(warning);
  const stats = timelineStats(timeline);
  log.info(`Wrote the beat timeline of "${source}"`, {
    output: output ?? "stdout",
    leases: stats.leases,
    events: stats.events,
    transitions: stats.transitions,
    spanSeconds: stats.spanMs / 1000,
  });
  return 0;
}

/** Writes all of `bytes` to stdout; false when the reader went away. */
async function writeStdout(bytes: Uint8Array): Promise<boolean> {
  try {
    let written = 0;
    while (written < bytes.length) {
      written += await Deno.stdout.write(bytes.subarray(written));
    }
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.BrokenPipe) return false;
    throw err;
  }
}
