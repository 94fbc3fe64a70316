/**
 * Test helper: runs `earthworm probe` on its own (until cli/main.ts wires it
 * in), e.g. as an unprivileged user.
 * Usage: deno run --allow-all tests/wire/probe_main.ts [probe flags]
 *
 * @module
 */

import { probeCommand } from "../../cli/probe.ts";

Deno.exit(await probeCommand(Deno.args));
