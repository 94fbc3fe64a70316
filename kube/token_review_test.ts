import assert from "node:assert/strict";
import {
  judge,
  tokenExpiry,
  tokenReviewAuthenticator,
} from "./token_review.ts";
import { KubeApiError } from "./rest_client.ts";
import { FakeClock } from "../core/fake_clock.ts";

const allowed = ["system:serviceaccount:earthworm:earthworm"];

Deno.test("a review verdict accepts only Earthworm's ServiceAccount with the right audience", () => {
  assert.deepEqual(
    judge(
      {
        authenticated: true,
        user: { username: allowed[0]! },
        audiences: ["earthworm"],
      },
      "earthworm",
      allowed,
    ),
    { ok: true, user: allowed[0] },
  );
  const other = judge(
    {
      authenticated: true,
      user: { username: "system:serviceaccount:default:default" },
    },
    "earthworm",
    allowed,
  );
  assert.equal(other.ok, false);
  assert.equal(!other.ok && other.status, 403);
  const wrongAudience = judge(
    {
      authenticated: true,
      user: { username: allowed[0]! },
      audiences: ["https://kubernetes.default.svc"],
    },
    "earthworm",
    allowed,
  );
  assert.equal(!wrongAudience.ok && wrongAudience.status, 401);
  const rejected = judge(
    { authenticated: false, error: "token expired" },
    "earthworm",
    allowed,
  );
  assert.match(!rejected.ok ? rejected.error : "", /token expired/);
});

const USER = allowed[0]!;
const NODE_EXTRA = "authentication.kubernetes.io/node-name";
const POD_EXTRA = "authentication.kubernetes.io/pod-name";
const POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid";

/**
 * A stand-in API server: tokens `agent-<node>` belong to Earthworm's agents
 * on that node (node-name extra); `pod-<name>` tokens carry only their pod;
 * everything else is rejected. Counts reviews and pod reads.
 */
function fakeApi(
  opts: {
    pods?: Record<string, { uid: string; nodeName?: string }>;
    delay?: () => Promise<void>;
  } = {},
) {
  const calls = { reviews: 0, pods: 0 };
  const client = {
    async request<T>(method: string, path: string, body?: unknown) {
      if (method === "POST" && path.endsWith("/tokenreviews")) {
        calls.reviews++;
        await opts.delay?.();
        const token = (body as { spec: { token: string } }).spec.token;
        const agent = /^agent-(.+)$/.exec(token);
        const pod = /^pod-(.+)$/.exec(token);
        const status = agent
          ? {
            authenticated: true,
            user: { username: USER, extra: { [NODE_EXTRA]: [agent[1]!] } },
            audiences: ["earthworm"],
          }
          : pod
          ? {
            authenticated: true,
            user: {
              username: USER,
              extra: {
                [POD_EXTRA]: [pod[1]!],
                [POD_UID_EXTRA]: [`uid-${pod[1]}`],
              },
            },
            audiences: ["earthworm"],
          }
          : token === "unbound"
          ? { authenticated: true, user: { username: USER } }
          : { authenticated: false, error: "invalid bearer token" };
        return { status } as T;
      }
      const m = /^\/api\/v1\/namespaces\/earthworm\/pods\/([^/]+)$/.exec(path);
      if (method === "GET" && m) {
        calls.pods++;
        const pod = opts.pods?.[m[1]!];
        if (!pod) {
          throw new KubeApiError(404, `pods "${m[1]}" not found`, "NotFound");
        }
        return {
          metadata: { name: m[1], uid: pod.uid },
          spec: pod.nodeName ? { nodeName: pod.nodeName } : {},
        } as T;
      }
      throw new Error(`unexpected ${method} ${path}`);
    },
  };
  return { client, calls };
}

Deno.test("a valid agent keeps its cached verdict through a flood of garbage tokens", async () => {
  const clock = new FakeClock();
  const { client, calls } = fakeApi();
  const auth = tokenReviewAuthenticator(client, {
    allowedUsers: allowed,
    clock,
    cacheEntries: () => 16,
  });
  assert.deepEqual(await auth("agent-n1", "10.0.0.1"), {
    ok: true,
    user: USER,
    node: "n1",
  });
  const verdicts = new Map<number, number>();
  for (let i = 0; i < 3000; i++) {
    const v = await auth(`garbage-${i}`, "10.6.6.6");
    const status = v.ok ? 200 : v.status;
    verdicts.set(status, (verdicts.get(status) ?? 0) + 1);
  }
  assert.ok(calls.reviews <= 1 + 10, `${calls.reviews} reviews`);
  assert.ok((verdicts.get(429) ?? 0) >= 2990, JSON.stringify([...verdicts]));
  const before = calls.reviews;
  assert.equal((await auth("agent-n1", "10.0.0.1")).ok, true);
  assert.equal(calls.reviews, before, "the agent's entry survived");
  // Another client is not punished for the flood.
  const other = await auth("garbage-x", "10.0.0.2");
  assert.equal(!other.ok && other.status, 401);
  // The flooding client may try again once its budget refills.
  await clock.advance(10 * 60_000);
  const later = await auth("garbage-y", "10.6.6.6");
  assert.equal(!later.ok && later.status, 401);
});

Deno.test("the verdict cache holds every agent of a large cluster", async () => {
  const clock = new FakeClock();
  const { client, calls } = fakeApi();
  const agents = 1500;
  const auth = tokenReviewAuthenticator(client, {
    allowedUsers: allowed,
    clock,
    cacheEntries: () => 2 * agents,
  });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < agents; i++) {
      assert.equal(
        (await auth(`agent-node-${i}`, `10.1.${i >> 8}.${i & 255}`)).ok,
        true,
      );
    }
    await clock.advance(1000);
  }
  assert.equal(calls.reviews, agents, "one review per agent, not per report");
});

Deno.test("the least recently used verdict leaves a full cache first", async () => {
  const { client, calls } = fakeApi();
  const auth = tokenReviewAuthenticator(client, {
    allowedUsers: allowed,
    clock: new FakeClock(),
    cacheEntries: () => 64, // also the fewest it keeps
  });
  for (let i = 0; i < 64; i++) await auth(`agent-n${i}`, "c");
  await auth("agent-n0", "c"); // now the most recently used
  await auth("agent-n64", "c"); // evicts agent-n1
  assert.equal(calls.reviews, 65);
  await auth("agent-n0", "c");
  assert.equal(calls.reviews, 65, "agent-n0 was kept");
  await auth("agent-n1", "c");
  assert.equal(calls.reviews, 66, "agent-n1 was evicted");
});

Deno.test("concurrent reviews of one token are merged into one", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const { client, calls } = fakeApi({ delay: () => gate });
  const auth = tokenReviewAuthenticator(client, {
    allowedUsers: allowed,
    clock: new FakeClock(),
  });
  const pending = Array.from({ length: 20 }, () => auth("agent-n1", "c"));
  const garbage = Array.from({ length: 3 }, () => auth("nope", "d"));
  // Every call has hashed its token and found the review in flight.
  while (calls.reviews < 2) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setTimeout(r, 20));
  release();
  const verdicts = await Promise.all(pending);
  assert.ok(verdicts.every((v) => v.ok && v.node === "n1"));
  assert.ok((await Promise.all(garbage)).every((v) => !v.ok));
  assert.equal(calls.reviews, 2);
});

Deno.test("the node comes from the token, or else from the pod it is bound to", async () => {
  const { client, calls } = fakeApi({
    pods: {
      "earthworm-b": { uid: "uid-earthworm-b", nodeName: "n2" },
      "earthworm-c": { uid: "uid-earthworm-c" },
      "earthworm-d": { uid: "another-pod-of-that-name", nodeName: "n4" },
    },
  });
  const auth = tokenReviewAuthenticator(client, {
    allowedUsers: allowed,
    clock: new FakeClock(),
  });
  assert.deepEqual(await auth("agent-n1", "c"), {
    ok: true,
    user: USER,
    node: "n1",
  });
  assert.equal(calls.pods, 0, "no pod read when the token names its node");
  assert.deepEqual(await auth("pod-earthworm-b", "c"), {
    ok: true,
    user: USER,
    node: "n2",
  });
  assert.equal(calls.pods, 1);
  await auth("pod-earthworm-b", "c");
  assert.equal(calls.pods, 1, "cached with the verdict");
  const cases: [string, RegExp][] = [
    ["pod-earthworm-c", /not scheduled on a node/],
    ["pod-earthworm-d", /no longer exists/],
    ["pod-earthworm-gone", /no longer exists/],
    ["unbound", /names no pod or node/],
  ];
  for (const [token, message] of cases) {
    const v = await auth(token, "c");
    assert.equal(v.ok, false, token);
    assert.equal(!v.ok && v.status, 403, token);
    assert.match(!v.ok ? v.error : "", message, token);
  }
});

/** A token shaped like a JWT whose payload states `exp` (seconds). */
function jwt(node: string, exp: number): string {
  const b64 = (v: unknown) =>
    btoa(JSON.stringify(v)).replaceAll("+", "-").replaceAll("/", "_")
      .replaceAll("=", "");
  return `agent-${node}.${b64({ exp })}.signature`;
}

Deno.test("a verdict is kept between half and all of the cache time, at random", async () => {
  for (const [random, keptMs] of [[0, 50_000], [0.999, 99_950]] as const) {
    const clock = new FakeClock();
    const { client, calls } = fakeApi();
    const auth = tokenReviewAuthenticator(client, {
      allowedUsers: allowed,
      clock,
      cacheMs: 100_000,
      random: () => random,
    });
    await auth("agent-n1");
    await clock.advance(keptMs - 1);
    await auth("agent-n1");
    assert.equal(calls.reviews, 1, `still cached after ${keptMs - 1} ms`);
    await clock.advance(1);
    await auth("agent-n1");
    assert.equal(calls.reviews, 2, `reviewed again after ${keptMs} ms`);
  }
});

Deno.test("a verdict is never kept past the token's own expiry", async () => {
  const clock = new FakeClock();
  const { client, calls } = fakeApi();
  const auth = tokenReviewAuthenticator(client, {
    allowedUsers: allowed,
    clock,
    cacheMs: 100_000,
    random: () => 0.999,
  });
  const token = jwt("n1", (clock.now() + 10_000) / 1000);
  assert.equal(tokenExpiry(token), clock.now() + 10_000);
  assert.equal((await auth(token)).ok, true);
  await clock.advance(9_999);
  await auth(token);
  assert.equal(calls.reviews, 1);
  await clock.advance(1);
  await auth(token);
  assert.equal(calls.reviews, 2, "reviewed again once the token expired");
  assert.equal(tokenExpiry("not-a-jwt"), null);
  assert.equal(tokenExpiry("a.bm90IGpzb24.c"), null);
});

Deno.test("past the reviews in flight, an unknown token is asked to come back in 1-5 s", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const { client, calls } = fakeApi({ delay: () => gate });
  const auth = tokenReviewAuthenticator(client, {
    allowedUsers: allowed,
    maxPendingReviews: 2,
    random: () => 0.5,
  });
  const first = auth("agent-n1", "10.0.0.1");
  const second = auth("agent-n2", "10.0.0.2");
  const again = auth("agent-n1", "10.0.0.1");
  const third = await auth("agent-n3", "10.0.0.3");
  assert.deepEqual(third, {
    ok: false,
    status: 429,
    error: "2 agents' tokens are being reviewed: retry in 3 s",
    retryAfterSeconds: 3,
  });
  release();
  assert.equal((await first).ok, true);
  assert.equal((await second).ok, true);
  assert.equal((await again).ok, true, "a token under review waits for it");
  assert.equal(calls.reviews, 2);
  assert.equal((await auth("agent-n3", "10.0.0.3")).ok, true);
  // Being asked to wait is not a failure of the client's.
  for (let i = 4; i < 12; i++) {
    assert.equal((await auth(`agent-n${i}`, "10.0.0.3")).ok, true);
  }
});

Deno.test("a token whose verdict expired is reviewed again even while the review slots are full", async () => {
  const clock = new FakeClock();
  let release!: () => void;
  let gate: Promise<void> = Promise.resolve();
  const { client, calls } = fakeApi({ delay: () => gate });
  const auth = tokenReviewAuthenticator(client, {
    allowedUsers: allowed,
    clock,
    cacheMs: 1000,
    maxPendingReviews: 1,
    random: () => 0,
  });
  assert.equal((await auth("agent-n1")).ok, true);
  await clock.advance(1000);
  gate = new Promise<void>((r) => release = r);
  const newcomer = auth("agent-n2");
  const known = auth("agent-n1");
  const refused = await auth("agent-n3");
  assert.equal(!refused.ok && refused.status, 429, "n3 is new: it waits");
  release();
  assert.equal((await newcomer).ok, true);
  assert.equal((await known).ok, true, "n1 was known: it was let through");
  assert.equal(calls.reviews, 3);
});
