import assert from "node:assert/strict";
import { InputError } from "../core/errors.ts";
import {
  checkNodeBudget,
  MAX_LEASE_FILE_BYTES,
  readLeaseFile,
  readLeaseText,
} from "./lease_file.ts";
import { assertInputError, fixture, parse } from "./_lease_test_utils.ts";

Deno.test("a kubectl List yields every Lease with only the fields Earthworm reads", async () => {
  const snaps = await readLeaseFile(fixture("leases_kubectl_list.yaml"));
  assert.equal(snaps.length, 6);
  assert.deepEqual(snaps.map((s) => s.lease.metadata.name), [
    "cp-1",
    "worker-1",
    "worker-2",
    "apiserver-ksc3xvdfmt2r4hx5lqjz7y2vca",
    "kube-controller-manager",
    "kube-scheduler",
  ]);
  assert.deepEqual(snaps[4]?.lease, {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: "kube-controller-manager",
      namespace: "kube-system",
      uid: "7b3f0e92-c4d1-4a68-9e25-0a6d8c1f3b47",
      creationTimestamp: "2024-05-01T08:12:58Z",
      resourceVersion: "48215",
    },
    spec: {
      holderIdentity: "cp-1_7a1f0c52-4e2b-4d8e-9a51-0f3c2d7b9e11",
      leaseDurationSeconds: 15,
      leaseTransitions: 1,
      acquireTime: "2024-05-01T08:13:02.415608Z",
      renewTime: "2024-05-01T10:00:06.532107Z",
    },
  });
  assert.equal(snaps[1]?.place, "line 20, items[1]");
});

Deno.test("the JSON form of a List gives the same Leases as its YAML form", async () => {
  const fromYaml = await readLeaseFile(fixture("leases_kubectl_list.yaml"));
  const fromJson = await readLeaseFile(fixture("leases_kubectl_list.json"));
  assert.deepEqual(
    fromJson.map((s) => s.lease),
    fromYaml.map((s) => s.lease),
  );
});

Deno.test("several YAML documents are read in order with file-wide line numbers", async () => {
  const snaps = await readLeaseFile(fixture("leases_multi_doc.yaml"));
  assert.equal(snaps.length, 9);
  assert.deepEqual(snaps.map((s) => s.index), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(snaps[3]?.lease.metadata.name, "worker-1");
  assert.match(snaps[3]?.place ?? "", /^line 4\d, items\[0\]$/);
});

Deno.test("the seed format keeps every snapshot of the same Lease", async () => {
  const snaps = await readLeaseFile(fixture("leases_seed.yaml"));
  assert.equal(snaps.length, 37);
  const worker1 = snaps.filter((s) => s.lease.metadata.name === "worker-1");
  assert.equal(worker1.length, 12);
  const unheld = snaps.at(-1)?.lease;
  assert.equal(unheld?.metadata.name, "my-operator-lock");
  assert.equal(unheld?.spec?.holderIdentity, null);
  assert.equal(unheld?.spec?.renewTime, undefined);
});

Deno.test("malformed YAML names the line and column", () => {
  assertInputError(
    () => parse("items:\n- metadata: {name: a\n  spec: {}\n"),
    'Cannot read lease file "f.yaml": line ',
    /line \d+, column \d+: invalid YAML: /,
    "fix the syntax",
  );
});

Deno.test("a billion-laughs alias bomb is rejected quickly with its line", async () => {
  const text = await Deno.readTextFile(fixture("bad_alias_bomb.yaml"));
  const started = performance.now();
  assertInputError(() => parse(text), "line 2", "billion laughs", "aliases");
  assert.ok(performance.now() - started < 2000);
});

Deno.test("a few shared anchors stay within the node budget", () => {
  const text = "defaults: &d {holderIdentity: w1, leaseDurationSeconds: 40}\n" +
    "items:\n" +
    Array.from(
      { length: 50 },
      (_, i) =>
        `- metadata: {name: w${i}, namespace: n}\n  spec: {renewTime: "2024-05-01T10:00:0${
          i % 10
        }Z", extra: *d}\n`,
    ).join("");
  assert.equal(parse(text).length, 50);
});

Deno.test("the node budget counts values reached again through shared references", () => {
  const leaf = ["x", "y"];
  const tree = [leaf, leaf, leaf];
  checkNodeBudget([tree], "f.yaml", new WeakMap(), 10);
  assertInputError(
    () => checkNodeBudget([[tree, tree]], "f.yaml", new WeakMap(), 10),
    "more than 10 values",
  );
});

Deno.test("js-yaml's nesting limit is reported as a place in the file", () => {
  assertInputError(
    () => parse("a: " + "[".repeat(200) + "]".repeat(200)),
    "maxDepth",
  );
});

Deno.test("missing files, directories, empty, binary and oversized files are one-line errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const reject = async (
      path: string,
      limit: number | undefined,
      part: string,
    ) => {
      const err = await readLeaseText(path, limit).then(
        () => undefined,
        (e) => e,
      );
      assert.ok(err instanceof InputError, `${path}: ${err}`);
      assert.ok(err.message.includes(`"${path}"`), err.message);
      assert.ok(err.message.includes(part), err.message);
    };
    await reject(`${dir}/missing.yaml`, undefined, "does not exist");
    await reject(dir, undefined, "is a directory");
    await Deno.writeTextFile(`${dir}/empty.yaml`, "");
    await reject(`${dir}/empty.yaml`, undefined, "is empty");
    await Deno.writeFile(
      `${dir}/bin.yaml`,
      new Uint8Array([0xff, 0xfe, 0x00, 0xc3]),
    );
    await reject(`${dir}/bin.yaml`, undefined, "not UTF-8");
    await Deno.writeTextFile(`${dir}/big.yaml`, "x".repeat(100));
    await reject(`${dir}/big.yaml`, 50, "larger than the 50 bytes limit");
    assert.equal(await readLeaseText(`${dir}/big.yaml`, 100), "x".repeat(100));
    const huge = await Deno.open(`${dir}/huge.yaml`, {
      create: true,
      write: true,
    });
    await huge.truncate(MAX_LEASE_FILE_BYTES + 1);
    huge.close();
    await reject(`${dir}/huge.yaml`, undefined, "larger than the 64 MiB limit");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
