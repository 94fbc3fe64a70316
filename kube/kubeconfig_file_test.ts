import assert from "node:assert/strict";
import { InputError } from "../core/errors.ts";
import { type Kubeconfig, readKubeconfig } from "./kubeconfig_file.ts";
import { loadKubeConfig } from "./kubeconfig.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kubeconfig-file-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `fn` with environment variables set ("" unsets), then restores them. */
async function withEnv(
  vars: Record<string, string>,
  fn: () => Promise<void>,
): Promise<void> {
  const saved = Object.keys(vars).map((k) => [k, Deno.env.get(k)] as const);
  for (const [k, v] of Object.entries(vars)) {
    if (v === "") Deno.env.delete(k);
    else Deno.env.set(k, v);
  }
  try {
    await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

async function rejection(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(() => undefined, (e) => e);
  assert.ok(err instanceof InputError, String(err));
  return err.message;
}

const A = {
  clusters: [{ name: "a", cluster: { server: "https://a:6443" } }],
  users: [{ name: "u", user: { token: "from-a" } }],
  contexts: [{ name: "a", context: { cluster: "a", user: "u" } }],
  "current-context": "a",
};
const B = {
  clusters: [
    { name: "a", cluster: { server: "https://shadowed:6443" } },
    { name: "b", cluster: { server: "https://b:6443" } },
  ],
  users: [{ name: "u", user: { token: "from-b" } }],
  contexts: [{ name: "b", context: { cluster: "a", user: "u" } }],
  "current-context": "b",
};

Deno.test("files in KUBECONFIG merge with the first definition of each name winning, as with kubectl", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a`, JSON.stringify(A));
    await Deno.writeTextFile(`${dir}/b`, JSON.stringify(B));
    await withEnv({ KUBECONFIG: `${dir}/a:${dir}/b` }, async () => {
      const kc = await readKubeconfig() as Kubeconfig;
      assert.equal(kc.context.name, "a");
      assert.equal(kc.cluster.server, "https://a:6443");
      const b = await readKubeconfig({ context: "b" }) as Kubeconfig;
      assert.equal(b.context.file.path, `${dir}/b`);
      assert.equal(b.cluster.server, "https://a:6443");
      assert.equal(b.user?.body.token, "from-a");
      const client = await loadKubeConfig({ context: "b" });
      assert.equal(client.getCurrentCluster()?.server, "https://a:6443");
      assert.equal(client.getCurrentUser()?.token, "from-a");
    });
  });
});

Deno.test("entries client-node would reject name their field and the fix", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config`;
    const cases: [unknown, string][] = [
      [{ clusters: { a: 1 } }, "clusters: expected a list, got a mapping"],
      [
        { clusters: ["x"] },
        'clusters[0]: expected a mapping, got the string "x"',
      ],
      [
        { clusters: [{ cluster: { server: "https://a" } }] },
        "clusters[0].name: the cluster has no name: add one",
      ],
      [
        { ...A, contexts: [...A.contexts, { name: "c" }] },
        'contexts[1].context: context "c" has no settings: add its cluster',
      ],
      [
        { ...A, contexts: [{ name: "a", context: { user: "u" } }] },
        'contexts[0].context.cluster: context "a" names no cluster',
      ],
      [{ ...A, users: [{ user: {} }] }, "users[0].name: the user has no name"],
      [
        { ...A, "current-context": "zzz" },
        'current-context: "zzz" is not under contexts: pass --context with one of "a"',
      ],
      [
        { clusters: A.clusters },
        'it defines no context: add one with "kubectl config set-context"',
      ],
      ["# only a comment\n", "expected a kubeconfig mapping"],
    ];
    for (const [doc, part] of cases) {
      await Deno.writeTextFile(
        path,
        typeof doc === "string" ? doc : JSON.stringify(doc),
      );
      const message = await rejection(readKubeconfig({ kubeconfig: path }));
      assert.ok(
        message.startsWith(`Cannot read kubeconfig "${path}": `),
        message,
      );
      assert.ok(message.includes(part), `${part}\nnot in\n${message}`);
    }
  });
});

Deno.test("without a kubeconfig the in-cluster ServiceAccount is used only inside a pod; else it is an input error", async () => {
  await withDir(async (home) => {
    await withEnv(
      { HOME: home, KUBECONFIG: "", KUBERNETES_SERVICE_HOST: "" },
      async () => {
        assert.equal(
          await rejection(readKubeconfig()),
          `No kubeconfig found: KUBECONFIG is not set and "${home}/.kube/config" does not exist: pass --kubeconfig FILE or set KUBECONFIG`,
        );
        await Deno.mkdir(`${home}/.kube`);
        await Deno.writeTextFile(`${home}/.kube/config`, JSON.stringify(A));
        const kc = await readKubeconfig() as Kubeconfig;
        assert.equal(kc.cluster.server, "https://a:6443");
      },
    );
  });
});
