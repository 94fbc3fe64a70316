import assert from "node:assert/strict";
import { InputError } from "../core/errors.ts";
import { readSimpleKubeconfig } from "./kubeconfig_lite.ts";

const CA = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nme\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n";

function kubeconfig(
  cluster: Record<string, unknown>,
  user: Record<string, unknown>,
): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: "other", cluster: { server: "https://other:6443" } },
      { name: "main", cluster },
    ],
    users: [{ name: "admin", user }],
    contexts: [
      { name: "main", context: { cluster: "main", user: "admin" } },
      { name: "other", context: { cluster: "other", user: "admin" } },
    ],
    "current-context": "main",
  });
}

async function rejectsWith(
  promise: Promise<unknown>,
  part: string,
): Promise<void> {
  const err = await promise.then(() => undefined, (e) => e);
  assert.ok(err instanceof InputError, String(err));
  assert.ok(err.message.includes(part), err.message);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kubeconfig-lite-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("embedded CA and client certificate become a REST configuration", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config`;
    await Deno.writeTextFile(
      path,
      kubeconfig(
        {
          server: "https://127.0.0.1:6443/",
          "certificate-authority-data": btoa(CA),
        },
        {
          "client-certificate-data": btoa(CERT),
          "client-key-data": btoa(KEY),
        },
      ),
    );
    const rest = await readSimpleKubeconfig({ kubeconfig: path });
    assert.deepEqual(rest, {
      server: "https://127.0.0.1:6443",
      caCerts: [CA],
      cert: CERT,
      key: KEY,
    });
  });
});

Deno.test("file paths resolve against the kubeconfig's folder and tokens become headers", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/ca.crt`, CA);
    await Deno.writeTextFile(`${dir}/token`, "secret\n");
    const path = `${dir}/config`;
    await Deno.writeTextFile(
      path,
      kubeconfig(
        { server: "https://k:6443", "certificate-authority": "ca.crt" },
        { tokenFile: `${dir}/token` },
      ),
    );
    const rest = await readSimpleKubeconfig({ kubeconfig: path });
    assert.deepEqual(rest?.caCerts, [CA]);
    assert.deepEqual(await rest?.authHeaders?.(), {
      Authorization: "Bearer secret",
    });
  });
});

Deno.test("a context given by name is used instead of the current one", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config`;
    await Deno.writeTextFile(
      path,
      kubeconfig({ server: "https://k:6443" }, { token: "t" }),
    );
    const rest = await readSimpleKubeconfig({
      kubeconfig: path,
      context: "other",
    });
    assert.equal(rest?.server, "https://other:6443");
    await rejectsWith(
      readSimpleKubeconfig({ kubeconfig: path, context: "nope" }),
      'it has no context "nope": pass one of "main", "other" to --context',
    );
  });
});

Deno.test("exec plugins, insecure clusters and undecodable certificates are left to client-node", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config`;
    const cases: [Record<string, unknown>, Record<string, unknown>][] = [
      [{ server: "https://k:6443" }, {
        exec: { command: "aws", apiVersion: "v1" },
      }],
      [{ server: "https://k:6443", "insecure-skip-tls-verify": true }, {}],
      [{ server: "https://k:6443", "proxy-url": "http://proxy:3128" }, {}],
      [{ server: "https://k:6443" }, { "client-certificate-data": btoa(CERT) }],
      [{ server: "https://k:6443", "certificate-authority-data": "%%%" }, {}],
    ];
    for (const [cluster, user] of cases) {
      await Deno.writeTextFile(path, kubeconfig(cluster, user));
      assert.equal(
        await readSimpleKubeconfig({ kubeconfig: path }),
        null,
        JSON.stringify([cluster, user]),
      );
    }
  });
});

Deno.test("missing and malformed kubeconfigs are input errors, not left to client-node", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config`;
    await Deno.writeTextFile(path, "clusters: [");
    await rejectsWith(
      readSimpleKubeconfig({ kubeconfig: path }),
      "line 2, column 1: invalid YAML",
    );
    await rejectsWith(
      readSimpleKubeconfig({ kubeconfig: `${dir}/missing` }),
      "does not exist",
    );
    await Deno.writeTextFile(
      path,
      kubeconfig(
        { server: "https://k:6443", "certificate-authority": "ca.crt" },
        {},
      ),
    );
    await rejectsWith(
      readSimpleKubeconfig({ kubeconfig: path }),
      `clusters[1].cluster.certificate-authority: "${dir}/ca.crt" does not exist`,
    );
  });
});
