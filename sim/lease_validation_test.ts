import assert from "node:assert/strict";
import { parseRfc3339 } from "./lease_validation.ts";
import { assertInputError, fixture, parse } from "./_lease_test_utils.ts";

function lease(
  spec: string,
  meta = "name: w1\n    namespace: kube-node-lease",
) {
  return `items:\n- metadata:\n    ${meta}\n  spec:\n    ${spec}\n`;
}

Deno.test("a single Lease document and a top-level list of Leases are accepted", () => {
  const single = parse(
    "kind: Lease\napiVersion: coordination.k8s.io/v1\nmetadata: {name: a, namespace: x}\nspec: {renewTime: 2024-05-01T10:00:00Z}\n",
  );
  assert.equal(single.length, 1);
  assert.equal(single[0]?.lease.spec?.renewTime, "2024-05-01T10:00:00Z");
  const list = parse(
    '[{"metadata": {"name": "a", "namespace": "x"}}, {"metadata": {"name": "b", "namespace": "x"}}]',
  );
  assert.deepEqual(list.map((s) => s.place), ["line 1, [0]", "line 1, [1]"]);
});

Deno.test("unquoted timestamps stay strings and unknown fields are ignored", () => {
  const [snap] = parse(
    lease(
      "renewTime: 2024-05-01T10:00:00.5Z\n    strategy: OldestEmulationVersion",
    ),
  );
  assert.equal(snap?.lease.spec?.renewTime, "2024-05-01T10:00:00.5Z");
  assert.equal("strategy" in (snap?.lease.spec ?? {}), false);
});

Deno.test("wrong field types name the field path, the line and the fix", () => {
  const cases: [string, string, ...string[]][] = [
    [
      lease('leaseDurationSeconds: "40"'),
      "line 5, items[0].spec.leaseDurationSeconds",
      'got the string "40": write 40 without quotes',
    ],
    [
      lease("leaseDurationSeconds: 1.5"),
      "items[0].spec.leaseDurationSeconds",
      "the number 1.5",
    ],
    [
      lease("leaseTransitions: -1"),
      "items[0].spec.leaseTransitions",
      "at least 0",
    ],
    [
      lease("leaseDurationSeconds: 2147483648"),
      "items[0].spec.leaseDurationSeconds",
      "at most 2147483647, got the number 2147483648",
      "32-bit integer",
    ],
    [
      lease("leaseTransitions: 1e300"),
      "items[0].spec.leaseTransitions",
      "at most 2147483647",
    ],
    [
      lease("holderIdentity: 42"),
      "items[0].spec.holderIdentity",
      "the number 42",
    ],
    [lease("renewTime: 1714557600"), "items[0].spec.renewTime", "RFC 3339"],
    [lease('renewTime: "yesterday"'), "items[0].spec.renewTime", '"yesterday"'],
    [lease('renewTime: "2024-02-30T10:00:00Z"'), "items[0].spec.renewTime"],
    [lease("acquireTime: [1]"), "items[0].spec.acquireTime", "a list"],
    [
      lease("renewTime: x", "name: w1"),
      "items[0].metadata.namespace",
      "add metadata.namespace",
    ],
    [
      lease("renewTime: x", "name: 7\n    namespace: x"),
      "items[0].metadata.name",
      "the number 7",
    ],
    ["items:\n- spec: {}\n", "items[0].metadata", "the Lease has no metadata"],
    ["items:\n- metadata: [a]\n", "items[0].metadata", "a list"],
    [
      "items:\n- metadata: {name: a, namespace: b}\n  spec: 3\n",
      "items[0].spec",
      "the number 3",
    ],
    ["items: {a: 1}\n", "items", "expected a list of Leases"],
    [
      "items:\n- 17\n",
      "items[0]",
      "expected a Lease mapping, got the number 17",
    ],
  ];
  for (const [text, ...parts] of cases) {
    assertInputError(() => parse(text), ...parts);
  }
});

Deno.test("the largest 32-bit lease duration is accepted", () => {
  const [snap] = parse(lease("leaseDurationSeconds: 2147483647"));
  assert.equal(snap?.lease.spec?.leaseDurationSeconds, 2_147_483_647);
});

Deno.test("objects that are not Leases are rejected with the export command as the fix", async () => {
  const text = await Deno.readTextFile(fixture("bad_pods_list.yaml"));
  assertInputError(
    () => parse(text),
    "items[0].kind",
    'expected kind "Lease", got "Pod"',
    "kubectl get leases -A -o yaml",
  );
  assertInputError(
    () => parse("kind: PodList\nitems: []\n"),
    'expected a List of Leases, got kind "PodList"',
  );
  assertInputError(
    () =>
      parse("items:\n- apiVersion: v1\n  metadata: {name: a, namespace: b}\n"),
    "items[0].apiVersion",
  );
  assertInputError(
    () => parse("just some text\n"),
    'got the string "just some text"',
  );
});

Deno.test("a file without any Lease is an error", () => {
  assertInputError(
    () => parse("# nothing here\n---\n"),
    "holds no Lease objects",
  );
  assertInputError(
    () => parse("apiVersion: v1\nkind: List\nitems: []\n"),
    "holds no Lease objects",
  );
});

Deno.test("errors in later documents name the document when no line is known", () => {
  assertInputError(
    () => parse("metadata: {name: a, namespace: b}\n---\n5\n"),
    "document 2: expected Leases",
  );
});

Deno.test("a timeline passed as Leases is pointed at mock --replay", () => {
  assertInputError(
    () => parse('{"version": 1, "events": []}'),
    "already a beat timeline",
  );
});

Deno.test("RFC 3339 times parse with any fraction and offset, and bad ones do not", () => {
  const table: [string, number | undefined][] = [
    ["2024-05-01T10:00:00Z", Date.UTC(2024, 4, 1, 10)],
    ["2024-05-01T10:00:00.123456Z", Date.UTC(2024, 4, 1, 10, 0, 0, 123)],
    ["2024-05-01T10:00:00.9999999Z", Date.UTC(2024, 4, 1, 10, 0, 0, 999)],
    ["2024-05-01T12:30:00+02:30", Date.UTC(2024, 4, 1, 10)],
    ["2024-05-01t10:00:00z", Date.UTC(2024, 4, 1, 10)],
    ["2024-05-01 10:00:00-01:00", Date.UTC(2024, 4, 1, 11)],
    ["0001-01-01T00:00:00Z", -62_135_596_800_000],
    ["0000-01-01T00:00:00Z", -62_167_219_200_000],
    ["0099-03-01T00:00:00Z", Date.UTC(2099, 2, 1) - 2000 * 31_556_952_000],
    ["9999-12-31T23:59:59.999999Z", 253_402_300_799_999],
    ["0000-01-01T00:00:00+01:00", undefined],
    ["9999-12-31T23:30:00-01:00", undefined],
    ["2024-02-30T10:00:00Z", undefined],
    ["2024-05-01T24:00:00Z", undefined],
    ["2024-05-01T10:00:00", undefined],
    ["2024-05-01", undefined],
    ["", undefined],
  ];
  for (const [text, want] of table) {
    assert.equal(parseRfc3339(text), want, text);
  }
});
