import assert from "node:assert/strict";
import { EpisodeBook } from "./episodes.ts";
import { type Finding, phrase } from "./diagnosis.ts";

const finding: Finding = {
  cause: "unknown",
  summary: "no renewal for 20 s; no wire data for this node",
  summaryPhrase: phrase("unknown.noWire", { silentMs: 20_000 }),
  evidence: [],
};

/** One closed episode of `id` from `at` to `at + 1000`. */
function episode(book: EpisodeBook, id: string, at: number): void {
  book.record(id, at, "late", finding);
  book.close(id, at + 1_000);
}

const starts = (book: EpisodeBook, id: string) =>
  book.list(id).map((e) => Date.parse(e.start));

Deno.test("episode book keeps a heart's newest episodes up to its cap", () => {
  const book = new EpisodeBook({ maxPerHeart: 3 });
  for (let i = 0; i < 5; i++) episode(book, "a", i * 10_000);
  assert.deepEqual(starts(book, "a"), [20_000, 30_000, 40_000]);
  assert.equal(book.size, 3);
});

Deno.test("episode book drops closed episodes past the retention window but a heart's last", () => {
  const book = new EpisodeBook({ retentionMs: 60_000 });
  episode(book, "a", 0);
  episode(book, "a", 100_000);
  assert.deepEqual(starts(book, "a"), [100_000]);
  episode(book, "b", 0);
  assert.deepEqual(starts(book, "b"), [0], "the only episode stays");
  assert.equal(book.size, 2);
});

Deno.test("episode book keeps at most maxTotal in all, dropping the oldest closed of any heart", () => {
  const book = new EpisodeBook({ maxTotal: 4 });
  let t = 0;
  for (let round = 0; round < 3; round++) {
    for (const id of ["a", "b", "c"]) episode(book, id, t += 10_000);
  }
  // Nine episodes opened a, b, c, a, b, c, a, b, c: the newest four stay.
  assert.equal(book.size, 4);
  assert.deepEqual(starts(book, "a"), [70_000]);
  assert.deepEqual(starts(book, "b"), [80_000]);
  assert.deepEqual(starts(book, "c"), [60_000, 90_000]);
});

Deno.test("episode book never drops an open episode to keep its total", () => {
  const book = new EpisodeBook({ maxTotal: 2 });
  book.record("open", 0, "expired", finding);
  for (let i = 1; i <= 5; i++) episode(book, `h${i}`, i * 10_000);
  assert.equal(book.size, 2);
  assert.equal(book.list("open").length, 1);
  assert.equal(book.current("open")?.end, null);
  assert.deepEqual(starts(book, "h5"), [50_000]);
  // Once closed, it is the oldest and the next to go.
  book.close("open", 60_000);
  episode(book, "h6", 70_000);
  assert.deepEqual(book.list("open"), []);
  assert.equal(book.size, 2);
});

Deno.test("episode book's total follows hearts deleted and episodes dropped per heart", () => {
  const book = new EpisodeBook({ maxPerHeart: 2, maxTotal: 1_000 });
  // Many episodes dropped by the per-heart cap, then by deletion: the total
  // counts what is kept, and the budget still finds the oldest kept one.
  for (let i = 0; i < 5_000; i++) episode(book, `h${i % 10}`, i * 1_000);
  assert.equal(book.size, 20);
  book.delete("h0");
  assert.equal(book.size, 18);
  const small = new EpisodeBook({ maxPerHeart: 2, maxTotal: 3 });
  for (let i = 0; i < 5_000; i++) episode(small, `h${i % 10}`, i * 1_000);
  assert.equal(small.size, 3);
  assert.deepEqual(
    ["h7", "h8", "h9"].map((id) => starts(small, id)),
    [[4_997_000], [4_998_000], [4_999_000]],
  );
});

Deno.test("a closed episode reads back as it was closed, and a copy: the book keeps it as text", () => {
  const book = new EpisodeBook();
  const withEvidence: Finding = {
    ...finding,
    evidence: [{
      at: "2026-03-01T10:00:05.000Z",
      text: "no Earthworm agent reports wire data for this node",
      phrase: phrase("evidence.noAgent"),
    }],
  };
  book.record(
    "a",
    Date.parse("2026-03-01T10:00:00Z"),
    "late",
    withEvidence,
    undefined,
    {
      id: "kube-node-lease/a",
    },
  );
  const open = book.current("a")!;
  assert.deepEqual(book.list("a"), [open], "the open one as it is");
  const closed = book.close("a", Date.parse("2026-03-01T10:00:30Z"))!;
  assert.equal(closed.end, "2026-03-01T10:00:30.000Z");
  const [read] = book.list("a");
  assert.deepEqual(read, closed);
  read!.cause = "kubelet";
  assert.equal(book.list("a")[0]!.cause, "unknown", "readers get copies");
  assert.equal(book.current("a"), undefined);
});

Deno.test("a closed episode keeps every digit, sign, fraction and escape of its JSON", () => {
  const book = new EpisodeBook();
  const odd: Finding = {
    cause: "network",
    summary: "node-0042 lost 3.75 % of 1e+21 packets \u0001 at -12 ms, 007",
    summaryPhrase: phrase("network.retransmitted", {
      count: -3,
      rate: 0.000123,
      srttUs: 1.5e-7,
    }),
    evidence: [{
      at: "2026-03-01T10:00:05.123Z",
      text: '1,2,3 "quoted" 10.0.0.2:40000->10.0.0.1:6443',
      phrase: phrase("evidence.noAgent"),
    }],
  };
  const ids = ["kube-node-lease/node-0042", "kube-node-lease/node-7"];
  for (const [i, id] of ids.entries()) {
    book.record(id, 1_000 + i, "expired", odd, 1_500, { id, cluster: "c-9" });
  }
  const closed = ids.map((id, i) => book.close(id, 90_061 + i)!);
  assert.deepEqual(ids.map((id) => book.list(id)), closed.map((e) => [e]));
  assert.equal(
    JSON.stringify(book.list(ids[0]!)[0]),
    JSON.stringify(closed[0]),
    "the same JSON, key order included",
  );
});

Deno.test("a closed episode's finding can be revised by evidence that came after its end", () => {
  const book = new EpisodeBook();
  book.record("source", 0, "unknown", finding);
  book.close("source", 10_000);
  const apiserver: Finding = {
    cause: "apiserver",
    summary: "the API server took 12 s",
    summaryPhrase: phrase("apiserver.slow", { latencyMs: 12_000 }),
    evidence: [],
  };
  const never = book.reviseClosed("source", apiserver, 11_000, () => false);
  assert.equal(never, null, "kept when the caller declines");
  assert.equal(book.closed.unknown, 1);
  const revised = book.reviseClosed(
    "source",
    apiserver,
    11_000,
    (e) => e.cause !== "apiserver",
  );
  assert.equal(revised?.cause, "apiserver");
  assert.equal(revised?.causeSince, new Date(11_000).toISOString());
  assert.equal(revised?.end, new Date(10_000).toISOString(), "same end");
  assert.deepEqual(book.list("source"), [revised]);
  assert.deepEqual([book.closed.unknown, book.closed.apiserver], [0, 1]);
  book.record("source", 20_000, "unknown", finding);
  assert.equal(
    book.reviseClosed("source", apiserver, 21_000, () => true),
    null,
    "not while the last one is open",
  );
});
