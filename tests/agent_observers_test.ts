import assert from "node:assert/strict";
import {
  leaderIntervals,
  overlappingLeaders,
  type RoleSample,
} from "./agent_observers.ts";

function sample(
  identity: string,
  sent: number,
  leader: 0 | 1 | null,
): RoleSample {
  return { identity, sent, received: sent + 5, leader };
}

Deno.test("leaderships span from the first leading answer to the last leading request", () => {
  const samples = [
    sample("a", 0, 1),
    sample("b", 2, 0),
    sample("a", 50, 1),
    sample("a", 100, 1),
    sample("b", 102, 0),
    sample("a", 150, null), // killed
    sample("b", 152, 0),
    sample("b", 200, 1),
    sample("b", 250, 1),
    sample("c", 260, 1), // one reading proves no span
  ];
  assert.deepEqual(leaderIntervals(samples), [
    { identity: "a", start: 5, end: 100 },
    { identity: "b", start: 205, end: 250 },
  ]);
  assert.deepEqual(overlappingLeaders(leaderIntervals(samples)), []);
});

Deno.test("two agents leading across the same readings are reported", () => {
  const samples = [
    sample("a", 0, 1),
    sample("b", 1, 1),
    sample("a", 50, 1),
    sample("b", 51, 1),
  ];
  assert.equal(overlappingLeaders(leaderIntervals(samples)).length, 1);
});
