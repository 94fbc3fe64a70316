import assert from "node:assert/strict";
import { HistoryLoader } from "./api.ts";

Deno.test("the history loader skips hearts that left the screen before their turn", async () => {
  const loader = new HistoryLoader(1);
  const ran: string[] = [];
  let release!: () => void;
  const first = new Promise<void>((r) => release = r);
  const onScreen = new Set(["a", "b", "c", "d"]);
  loader.request("a", () => {
    ran.push("a");
    return first;
  });
  const done: Promise<void>[] = [];
  for (const key of ["b", "c", "d"]) {
    done.push(
      new Promise<void>((resolve) =>
        loader.request(key, () => {
          ran.push(key);
          resolve();
          return Promise.resolve();
        }, () => onScreen.has(key))
      ),
    );
  }
  // Scrolled on while "a" loads: "b" and "c" are gone.
  onScreen.delete("b");
  onScreen.delete("c");
  release();
  await done[2];
  assert.deepEqual(ran, ["a", "d"]);
  assert.equal(loader.skipped, 2);
  // A skipped heart can be asked for again when it comes back.
  onScreen.add("b");
  await new Promise<void>((resolve) =>
    loader.request("b", () => {
      ran.push("b");
      resolve();
      return Promise.resolve();
    }, () => onScreen.has("b"))
  );
  assert.deepEqual(ran, ["a", "d", "b"]);
});
