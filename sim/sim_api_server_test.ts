import assert from "node:assert/strict";
import { FakeClock } from "../core/fake_clock.ts";
import type { Lease } from "../core/lease_types.ts";
import type { RawWatchEvent } from "../core/lease_source.ts";
import {
  SimApiServer,
  SimFrozenError,
  SimOutageError,
} from "./sim_api_server.ts";

function lease(name: string, renewTime: string, namespace = "ns"): Lease {
  return {
    metadata: { name, namespace },
    spec: { holderIdentity: name, renewTime, leaseDurationSeconds: 40 },
  };
}

function watch(
  server: SimApiServer,
  resourceVersion: string,
  opts: { namespace?: string; timeoutSeconds?: number } = {},
) {
  const events: RawWatchEvent[] = [];
  let opened = false;
  const controller = new AbortController();
  const done = server.watch({
    namespace: opts.namespace,
    resourceVersion,
    timeoutSeconds: opts.timeoutSeconds ?? 300,
    onOpen: () => opened = true,
    onEvent: (e) => events.push(e),
    signal: controller.signal,
  });
  return { events, done, opened: () => opened, stop: () => controller.abort() };
}

Deno.test("writes get increasing resourceVersions and ADDED, MODIFIED, DELETED types", async () => {
  const server = new SimApiServer({ clock: new FakeClock() });
  const w = watch(server, server.resourceVersion);
  server.write(lease("a", "t1"));
  server.write(lease("a", "t2"));
  server.write(lease("b", "t1"));
  assert.equal(server.delete("ns", "a"), true);
  assert.equal(server.delete("ns", "a"), false);
  w.stop();
  await w.done;
  assert.deepEqual(
    w.events.map((e) => [e.type, (e.object as Lease).metadata.resourceVersion]),
    [["ADDED", "1"], ["MODIFIED", "2"], ["ADDED", "3"], ["DELETED", "4"]],
  );
  const list = await server.list(undefined, new AbortController().signal);
  assert.equal(list.resourceVersion, "4");
  assert.deepEqual(list.items.map((l) => l.metadata.name), ["b"]);
});

Deno.test("a watch resumes from a resourceVersion and filters by namespace", async () => {
  const server = new SimApiServer({ clock: new FakeClock() });
  server.write(lease("a", "t1"));
  server.write(lease("x", "t1", "other"));
  server.write(lease("a", "t2"));
  const w = watch(server, "1", { namespace: "ns" });
  assert.equal(w.opened(), true);
  server.write(lease("a", "t3"));
  w.stop();
  await w.done;
  assert.deepEqual(
    w.events.map((e) => (e.object as Lease).spec?.renewTime),
    ["t2", "t3"],
  );
});

Deno.test("a watch from a version no longer kept gets 410 Gone", async () => {
  const server = new SimApiServer({ clock: new FakeClock(), historyLimit: 4 });
  for (let i = 0; i < 10; i++) server.write(lease("a", `t${i}`));
  const w = watch(server, "1");
  await w.done;
  assert.equal(w.events.length, 1);
  assert.equal(w.events[0]!.type, "ERROR");
  assert.equal((w.events[0]!.object as { code: number }).code, 410);
});

Deno.test("a watch ends normally after its server-side timeout on the clock", async () => {
  const clock = new FakeClock();
  const server = new SimApiServer({ clock });
  const w = watch(server, "0", { timeoutSeconds: 60 });
  let ended = false;
  w.done.then(() => ended = true);
  await clock.advance(59_000);
  assert.equal(ended, false);
  await clock.advance(1_000);
  assert.equal(ended, true);
  assert.equal(server.watchers, 0);
});

Deno.test("while down, lists, watches and writes fail, and open watches break", async () => {
  const server = new SimApiServer({ clock: new FakeClock() });
  const w = watch(server, "0");
  server.setDown("maintenance");
  await assert.rejects(w.done, SimOutageError);
  const signal = new AbortController().signal;
  await assert.rejects(server.list(undefined, signal), /maintenance/);
  await assert.rejects(
    server.watch({
      namespace: undefined,
      resourceVersion: "0",
      timeoutSeconds: 1,
      onOpen: () => {},
      onEvent: () => {},
      signal,
    }),
    (err: unknown) =>
      err instanceof SimOutageError && err.code === "ECONNREFUSED",
  );
  assert.throws(() => server.write(lease("a", "t")), SimOutageError);
  server.setDown(null);
  server.write(lease("a", "t"));
  assert.equal(server.reachable, true);
});

Deno.test("an error thrown by the consumer ends the watch with that error", async () => {
  const server = new SimApiServer({ clock: new FakeClock() });
  const done = server.watch({
    namespace: undefined,
    resourceVersion: "0",
    timeoutSeconds: 60,
    onOpen: () => {},
    onEvent: () => {
      throw new Error("consumer failed");
    },
    signal: new AbortController().signal,
  });
  server.write(lease("a", "t"));
  await assert.rejects(done, /consumer failed/);
  assert.equal(server.watchers, 0);
});

Deno.test("reads of one Lease return a copy of the stored object, or null when there is none", async () => {
  const server = new SimApiServer({ clock: new FakeClock() });
  server.write(lease("a", "t1"));
  const signal = new AbortController().signal;
  const read = await server.read("ns", "a", signal);
  assert.equal(read?.spec?.renewTime, "t1");
  assert.equal(read?.metadata.resourceVersion, "1");
  read!.spec!.renewTime = "changed";
  assert.equal(server.get("ns", "a")?.spec?.renewTime, "t1");
  assert.equal(await server.read("ns", "b", signal), null);
  await server.ping(undefined, signal);
  server.setDown("maintenance");
  await assert.rejects(server.read("ns", "a", signal), SimOutageError);
  await assert.rejects(server.ping("ns", signal), SimOutageError);
});

Deno.test("a frozen server answers nothing until it thaws: requests wait or end with their signal, writes time out, watches stay open and silent", async () => {
  const clock = new FakeClock();
  const server = new SimApiServer({ clock });
  server.write(lease("a", "t1"));
  const w = watch(server, server.resourceVersion, { timeoutSeconds: 10 });
  server.freeze();
  assert.equal(server.frozen, true);
  const settled: string[] = [];
  const never = new AbortController().signal;
  const ping = server.ping(undefined, never).then(() => settled.push("ping"));
  const read = server.read("ns", "a", never).then((l) => {
    settled.push(`read ${l?.spec?.renewTime}`);
  });
  const list = server.list(undefined, never).then((l) => {
    settled.push(`list ${l.items.length}`);
  });
  const giveUp = new AbortController();
  const abandoned = server.ping(undefined, giveUp.signal);
  const late = watch(server, "0");
  assert.throws(() => server.write(lease("a", "t2")), SimFrozenError);
  // Not even a watch's timeout ends anything while frozen.
  await clock.advance(20_000);
  assert.deepEqual(settled, []);
  assert.equal(late.opened(), false);
  giveUp.abort(new Error("deadline"));
  await assert.rejects(abandoned, /deadline/);
  assert.equal(server.watchers, 1);

  server.thaw();
  await Promise.all([ping, read, list]);
  assert.deepEqual(settled.sort(), ["list 1", "ping", "read t1"]);
  await w.done;
  assert.equal(w.events.length, 0, "the frozen watch delivered nothing");
  assert.equal(late.opened(), true);
  assert.deepEqual(
    late.events.map((e) => (e.object as Lease).spec?.renewTime),
    ["t1"],
  );
  server.write(lease("a", "t3"));
  late.stop();
  await late.done;
  assert.equal(late.events.length, 2);
});
