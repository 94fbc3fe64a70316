/**
 * Earthworm: live cardiograms of a Kubernetes cluster's Lease heartbeats.
 * `earthworm <mock|watch|agent|probe|parse-leases> [flags]`
 *
 * @module
 */

import { run } from "./cli/run.ts";

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
