import assert from "node:assert/strict";
import { WireUnavailableError } from "../core/errors.ts";
import {
  discoverApiserver,
  flagValue,
  kubeconfigServer,
  serverPort,
} from "./apiserver_endpoint.ts";

const HEADER =
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

/** One /proc/net/tcp row: IPv4 10.0.0.5 talking to 10.0.0.1. */
function row(
  lport: number,
  rport: number,
  state: number,
  inode: number,
): string {
  const hex = (n: number, w: number) =>
    n.toString(16).toUpperCase().padStart(w, "0");
  return `   0: 0500000A:${hex(lport, 4)} 0100000A:${hex(rport, 4)} ${
    hex(state, 2)
  } 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 20 4 30 10 -1\n`;
}

/** A fake /proc with one process. */
async function fakeProc(
  opts: {
    comm?: string;
    cmdline?: string[];
    rows?: string[];
    inodes?: number[];
    files?: Record<string, string>;
  },
): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "earthworm-proc-" });
  const dir = `${root}/4242`;
  await Deno.mkdir(`${dir}/fd`, { recursive: true });
  await Deno.mkdir(`${dir}/net`);
  await Deno.writeTextFile(`${dir}/comm`, `${opts.comm ?? "kubelet"}\n`);
  await Deno.writeTextFile(
    `${dir}/cmdline`,
    (opts.cmdline ?? ["/usr/bin/kubelet"]).join("\0") + "\0",
  );
  await Deno.writeTextFile(
    `${dir}/net/tcp`,
    HEADER + (opts.rows ?? []).join(""),
  );
  for (const [i, inode] of (opts.inodes ?? []).entries()) {
    await Deno.symlink(`socket:[${inode}]`, `${dir}/fd/${i + 3}`);
  }
  for (const [path, text] of Object.entries(opts.files ?? {})) {
    const full = `${dir}/root${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, text);
  }
  return root;
}

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
- name: other
  cluster: {server: "https://10.9.9.9:6443"}
- name: managed
  cluster: {server: "https://api.example.com"}
contexts:
- name: default
  context: {cluster: managed, user: kubelet}
current-context: default
users:
- name: kubelet
  user: {}
`;

Deno.test("the kubelet's kubeconfig names the API server port, 443 when the URL has none", async () => {
  const root = await fakeProc({
    cmdline: [
      "/usr/bin/kubelet",
      "--v=2",
      "--kubeconfig=/etc/kubernetes/kubelet.conf",
    ],
    files: { "/etc/kubernetes/kubelet.conf": KUBECONFIG },
  });
  try {
    const found = await discoverApiserver("kubelet", root);
    assert.equal(found.port, 443);
    assert.equal(found.source, "kubeconfig");
    assert.match(
      found.detail,
      /https:\/\/api\.example\.com in the kubelet's kubeconfig \/etc\/kubernetes\/kubelet\.conf/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("without a kubeconfig the kubelet's outgoing connection tells the port, not the ones it accepted", async () => {
  const root = await fakeProc({
    rows: [
      row(10250, 0, 0x0a, 100), // listening on 10250
      row(10250, 51000, 0x01, 101), // the API server calling the kubelet
      row(10250, 51001, 0x01, 102),
      row(43210, 16443, 0x01, 103), // the kubelet's own connection
      row(43211, 16443, 0x06, 0), // TIME_WAIT, no inode
    ],
    inodes: [100, 101, 102, 103],
  });
  try {
    const found = await discoverApiserver("kubelet", root);
    assert.deepEqual(found, {
      port: 16443,
      source: "connections",
      detail: "the kubelet process (pid 4242) is connected to 10.0.0.1:16443",
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("no kubelet, or a kubelet with nothing to tell, is a retryable no-kubelet reason", async () => {
  const none = await fakeProc({ comm: "sshd" });
  const silent = await fakeProc({
    rows: [row(10250, 0, 0x0a, 100)],
    inodes: [100],
  });
  try {
    await assert.rejects(
      discoverApiserver("kubelet", none),
      (e: unknown) =>
        e instanceof WireUnavailableError && e.reason === "no-kubelet" &&
        /No process named "kubelet"/.test(e.message),
    );
    await assert.rejects(
      discoverApiserver("kubelet", silent),
      /no readable kubeconfig and no connection to an API server yet/,
    );
  } finally {
    await Deno.remove(none, { recursive: true });
    await Deno.remove(silent, { recursive: true });
  }
});

Deno.test("command-line flags and server URLs are read in every spelling", () => {
  assert.equal(flagValue(["--kubeconfig", "/a"], "kubeconfig"), "/a");
  assert.equal(flagValue(["--kubeconfig=/b"], "kubeconfig"), "/b");
  assert.equal(flagValue(["-kubeconfig=/c"], "kubeconfig"), "/c");
  assert.equal(flagValue(["--kubeconfigx=/d"], "kubeconfig"), undefined);
  assert.equal(serverPort("https://10.0.0.1:6443"), 6443);
  assert.equal(serverPort("https://[fd00::1]"), 443);
  assert.equal(serverPort("http://localhost"), 80);
  assert.equal(serverPort("not a url"), undefined);
  assert.equal(
    kubeconfigServer("clusters: [{name: a, cluster: {server: 'https://x:1'}}]"),
    "https://x:1",
  );
});
