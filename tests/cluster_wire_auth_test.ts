/**
 * Wire-report authentication on a real kube-apiserver: projected
 * ServiceAccount tokens bound to agent pods, reviewed by TokenReview. A
 * report counts only for the node its token was issued for (the node-name
 * the API server puts in the review, or else the node of the pod the token
 * is bound to), and a flood of garbage tokens costs a handful of reviews.
 */
import assert from "node:assert/strict";
import {
  type Cluster,
  clusterPrereq,
  startCluster,
} from "./cluster/harness.ts";
import { KubeRestClient } from "../kube/rest_client.ts";
import { tokenReviewAuthenticator } from "../kube/token_review.ts";
import { HeartHub } from "../server/heart_hub.ts";
import { createApp } from "../server/api.ts";
import { serveApp } from "../server/http_server.ts";
import { systemClock } from "../core/clock.ts";
import type { ErrorResponse } from "../core/api_types.ts";

const req = clusterPrereq();
const NS = "earthworm";
const USER = `system:serviceaccount:${NS}:earthworm`;

interface ApiPod {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string };
}

/** Creates an agent pod (bound to `node` when given) and a token bound to it. */
async function podToken(
  api: KubeRestClient,
  name: string,
  node?: string,
): Promise<string> {
  const pod = await api.request<ApiPod>(
    "POST",
    `/api/v1/namespaces/${NS}/pods`,
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: NS },
      spec: {
        serviceAccountName: "earthworm",
        ...(node && { nodeName: node }),
        containers: [{ name: "agent", image: "earthworm:test" }],
      },
    },
  );
  const review = await api.request<{ status: { token: string } }>(
    "POST",
    `/api/v1/namespaces/${NS}/serviceaccounts/earthworm/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        audiences: ["earthworm"],
        expirationSeconds: 3600,
        boundObjectRef: {
          apiVersion: "v1",
          kind: "Pod",
          name,
          uid: pod.metadata.uid,
        },
      },
    },
  );
  return review.status.token;
}

Deno.test({
  name:
    "cluster: a wire report counts only for the node its pod-bound token was issued for",
  ignore: req.ignore,
  async fn() {
    req.check();
    let cluster: Cluster | undefined;
    const ac = new AbortController();
    let api: KubeRestClient | undefined;
    let hub: HeartHub | undefined;
    let server: Awaited<ReturnType<typeof serveApp>> | undefined;
    try {
      cluster = await startCluster();
      api = new KubeRestClient(cluster.rest);
      await cluster.kubectl(["create", "namespace", NS]);
      await cluster.kubectl([
        "create",
        "serviceaccount",
        "earthworm",
        "-n",
        NS,
      ]);
      await cluster.kubectl(["create", "serviceaccount", "other", "-n", NS]);
      const [nodeA, nodeB] = await cluster.createNodes(2, "auth-node") as [
        string,
        string,
      ];
      const tokenA = await podToken(api, "earthworm-a", nodeA);
      // Not scheduled yet when its token is issued: no node in the review.
      const tokenB = await podToken(api, "earthworm-b");
      const otherUser = (await cluster.kubectl([
        "create",
        "token",
        "other",
        "-n",
        NS,
        "--audience",
        "earthworm",
      ])).trim();

      let reviews = 0;
      const rest = api;
      const counting = {
        request<T>(
          method: "GET" | "POST" | "PUT" | "DELETE",
          path: string,
          body?: unknown,
        ): Promise<T> {
          if (path.endsWith("/tokenreviews")) reviews++;
          return rest.request<T>(method, path, body);
        },
      };
      hub = new HeartHub({
        clock: systemClock,
        source: { kind: "cluster", name: cluster.server },
      });
      const now = Date.now();
      hub.source(true, undefined, now);
      hub.resync(
        [nodeA, nodeB].map((name) => ({
          metadata: { namespace: "kube-node-lease", name },
          spec: {
            holderIdentity: name,
            leaseDurationSeconds: 40,
            renewTime: new Date(now).toISOString(),
          },
        })),
        now,
      );
      server = await serveApp(
        createApp({
          hub,
          authenticateAgent: tokenReviewAuthenticator(counting, {
            allowedUsers: [USER],
          }),
        }),
        { host: "127.0.0.1", port: 0, signal: ac.signal },
      );
      const url = server.url;
      const post = async (token: string, node: string) => {
        const res = await fetch(`${url}/api/v1/wire`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${token}`,
          },
          body: JSON.stringify({
            node,
            probe: { available: false, reason: `probe of ${node}` },
            exchanges: [],
          }),
        });
        const error = res.status === 204
          ? ""
          : (await res.json() as ErrorResponse).error;
        return { status: res.status, error };
      };

      // The API server names the node in the review of a token whose pod
      // was bound when the token was issued.
      assert.deepEqual(await post(tokenA, nodeA), { status: 204, error: "" });
      const forged = await post(tokenA, nodeB);
      assert.equal(forged.status, 403);
      assert.match(
        forged.error,
        new RegExp(`issued for node "${nodeA}", not "${nodeB}"`),
      );
      assert.deepEqual([...hub.probes().keys()], [nodeA]);

      // Without a node in the review: the node of the pod the token names.
      const unscheduled = await post(tokenB, nodeB);
      assert.equal(unscheduled.status, 403);
      assert.match(
        unscheduled.error,
        /Pod "earthworm\/earthworm-b" is not scheduled on a node/,
      );
      await api.request(
        "POST",
        `/api/v1/namespaces/${NS}/pods/earthworm-b/binding`,
        {
          apiVersion: "v1",
          kind: "Binding",
          metadata: { name: "earthworm-b" },
          target: { apiVersion: "v1", kind: "Node", name: nodeB },
        },
      );
      assert.deepEqual(await post(tokenB, nodeB), { status: 204, error: "" });
      assert.equal((await post(tokenB, nodeA)).status, 403);
      assert.deepEqual([...hub.probes().keys()].sort(), [nodeA, nodeB].sort());

      // Another ServiceAccount's token, with the right audience.
      assert.equal((await post(otherUser, nodeA)).status, 403);

      // Garbage from one client: a few reviews, then 429 without one.
      const before = reviews;
      const statuses = new Map<number, number>();
      for (let i = 0; i < 300; i++) {
        const { status } = await post(`garbage-${i}`, nodeA);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
      assert.ok(reviews - before <= 10, `${reviews - before} reviews`);
      assert.ok((statuses.get(429) ?? 0) >= 290, JSON.stringify([...statuses]));
      // The agents' cached verdicts still let them in.
      const cached = reviews;
      assert.equal((await post(tokenA, nodeA)).status, 204);
      assert.equal(reviews, cached);
    } finally {
      hub?.events.closeAll();
      ac.abort();
      await server?.finished;
      api?.[Symbol.dispose]();
      await cluster?.stop();
    }
  },
});
