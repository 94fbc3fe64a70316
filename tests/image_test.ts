/**
 * The container image, built without a Docker engine by
 * `deploy/build_image.sh` (once per test run, downloads cached in
 * ~/.cache/earthworm/image): the OCI archive as skopeo and umoci read it, then
 * the image's own entrypoint run inside its unpacked root filesystem with
 * chroot, in a private mount namespace (the /proc and /sys mounts it needs
 * vanish with its last process).
 */
import assert from "node:assert/strict";
import { prereq } from "./prereq.ts";
import { onPath } from "./prereq.ts";
import { loadManifest, only } from "./deploy/manifest.ts";
import { collectLines } from "./earthworm_process.ts";
import { until } from "./wait.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const VERSION: string =
  JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).version;
const IMAGE = `ghcr.io/earthworm-dev/earthworm:${VERSION}`;

function imageToolsMissing(): string | null {
  if (Deno.uid() !== 0) {
    return "needs root to unpack the image and chroot into it (run the tests with sudo)";
  }
  const tools: [string, string][] = [
    ["umoci", "umoci"],
    ["skopeo", "skopeo"],
    ["dpkg-deb", "dpkg"],
    ["gcc", "gcc"],
    ["unshare", "util-linux"],
    ["chroot", "coreutils"],
  ];
  for (const [tool, pkg] of tools) {
    if (!onPath(tool)) {
      return `"${tool}" is not installed: apt-get install ${pkg}`;
    }
  }
  let osRelease = "";
  try {
    osRelease = Deno.readTextFileSync("/etc/os-release");
  } catch { /* not Linux, or no os-release */ }
  if (!/^VERSION_CODENAME=bookworm$/m.test(osRelease)) {
    return "the image is made of Debian 12 packages: run on Debian 12 (or build with deploy/Dockerfile)";
  }
  return null;
}

const req = prereq(
  "root, umoci, skopeo and Debian 12's apt",
  imageToolsMissing(),
);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args,
    env: { NO_COLOR: "1", ...opts.env },
    clearEnv: opts.clearEnv ?? false,
    stdin: "null",
  }).output();
  const d = new TextDecoder();
  return {
    code: out.code,
    stdout: d.decode(out.stdout),
    stderr: d.decode(out.stderr),
  };
}

async function ok(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function buildImage(archive: string): Promise<Run> {
  return run("bash", [`${ROOT}deploy/build_image.sh`, "-o", archive], {
    env: { DENO: Deno.execPath() },
  });
}

interface ImageConfig {
  Entrypoint: string[];
  Cmd: string[];
  Env: string[];
  ExposedPorts: Record<string, unknown>;
  Labels: Record<string, string>;
}

/** The image built once for every test in this file. */
interface Built {
  dir: string;
  archive: string;
  /** The script's report on stderr (what it built, sizes). */
  log: string;
  /** `skopeo inspect` of the archive. */
  inspect: {
    Architecture: string;
    Os: string;
    Layers: string[];
    Digest: string;
  };
  config: ImageConfig;
  /** The unpacked root filesystem (`umoci unpack`). */
  rootfs: string;
}

let built: Promise<Built> | undefined;
let buildDir: string | undefined;

globalThis.addEventListener("unload", () => {
  if (buildDir) Deno.removeSync(buildDir, { recursive: true });
});

function image(): Promise<Built> {
  built ??= (async () => {
    const dir = buildDir = await Deno.makeTempDir({
      prefix: "earthworm-image-test-",
    });
    const archive = `${dir}/earthworm.oci.tar`;
    const b = await buildImage(archive);
    assert.equal(b.code, 0, `deploy/build_image.sh failed: ${b.stderr}`);
    assert.equal(b.stdout.trim(), archive, "the script prints the archive");
    const inspect = JSON.parse(
      await ok("skopeo", ["inspect", `oci-archive:${archive}`]),
    );
    const config = JSON.parse(
      await ok("skopeo", ["inspect", "--config", `oci-archive:${archive}`]),
    ).config as ImageConfig;
    // umoci reads an OCI layout: the archive is one, tarred.
    const layout = `${dir}/layout`;
    await Deno.mkdir(layout);
    await ok("tar", ["-xf", archive, "-C", layout]);
    await ok("umoci", [
      "unpack",
      "--image",
      `${layout}:${IMAGE}`,
      `${dir}/bundle`,
    ]);
    return {
      dir,
      archive,
      log: b.stderr,
      inspect,
      config,
      rootfs: `${dir}/bundle/rootfs`,
    };
  })();
  return built;
}

/** Absolute path of `cmd` on this machine's PATH. */
function which(cmd: string): string {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${cmd}`).isFile) return `${dir}/${cmd}`;
    } catch { /* not here */ }
  }
  throw new Error(`"${cmd}" is not on PATH`);
}

/**
 * Runs the image's entrypoint with `args` (instead of its command) in the
 * unpacked root filesystem with the image's environment only, and with /proc
 * and the host's /sys mounted in a private mount namespace: the mounts end
 * with the process, and none reaches the host's mount table.
 */
function inImage(
  img: Built,
  args: string[],
  stdout: "piped" | "null" = "piped",
): Deno.Command {
  for (const d of ["proc", "sys"]) {
    Deno.mkdirSync(`${img.rootfs}/${d}`, { recursive: true });
  }
  const env = Object.fromEntries(img.config.Env.map((e) => {
    const i = e.indexOf("=");
    return [e.slice(0, i), e.slice(i + 1)];
  }));
  const [mount, chroot] = [which("mount"), which("chroot")];
  return new Deno.Command(which("unshare"), {
    args: [
      "--mount",
      "--propagation",
      "private",
      which("sh"),
      "-c",
      `${mount} -t proc proc "$0/proc" && ${mount} --rbind /sys "$0/sys" && exec ${chroot} "$0" "$@"`,
      img.rootfs,
      ...img.config.Entrypoint,
      ...args,
    ],
    clearEnv: true,
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout,
    stderr: "piped",
  });
}

async function runInImage(img: Built, args: string[]): Promise<Run> {
  const out = await inImage(img, args).output();
  const d = new TextDecoder();
  return {
    code: out.code,
    stdout: d.decode(out.stdout),
    stderr: d.decode(out.stderr),
  };
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function duBytes(path: string): number {
  let total = 0;
  for (const e of Deno.readDirSync(path)) {
    const p = `${path}/${e.name}`;
    const s = Deno.lstatSync(p);
    if (s.isDirectory) total += duBytes(p);
    else total += s.size;
  }
  return total;
}

Deno.test({
  name:
    "image: deploy/build_image.sh writes an OCI archive of the manifest's image, entrypoint /earthworm, without Docker",
  ignore: req.ignore,
  async fn() {
    req.check();
    const img = await image();
    console.error(
      `image: ${
        img.log.split("\n").filter((l) => l.trim()).slice(-3).join("; ")
      }`,
    );
    assert.match(
      img.log,
      /compiled binary \(deno compile|Deno \d+\.\d+\.\d+ runtime from npm \+ code-split program/,
      "the script says which program it packed",
    );

    // The tag the manifest names.
    const tags = (await ok("umoci", ["ls", "--layout", `${img.dir}/layout`]))
      .trim().split("\n");
    assert.deepEqual(tags, [IMAGE]);
    const ds = only(loadManifest(), "DaemonSet", "earthworm");
    assert.equal(ds.spec.template.spec.containers[0].image, IMAGE);

    assert.equal(img.inspect.Os, "linux");
    assert.equal(
      img.inspect.Architecture,
      Deno.build.arch === "x86_64" ? "amd64" : "arm64",
    );
    assert.ok(img.inspect.Layers.length >= 2, "Debian libraries + program");
    assert.deepEqual(img.config.Entrypoint, ["/earthworm"]);
    assert.deepEqual(img.config.Cmd, ["agent"]);
    assert.deepEqual(Object.keys(img.config.ExposedPorts), ["8080/tcp"]);
    assert.equal(
      img.config.Labels["org.opencontainers.image.version"],
      VERSION,
    );

    // deploy/Dockerfile declares the same entrypoint, command and port.
    const docker = Deno.readTextFileSync(`${ROOT}deploy/Dockerfile`);
    const directive = (name: string) =>
      new RegExp(`^${name} (.+)$`, "m").exec(docker)?.[1];
    assert.deepEqual(
      JSON.parse(directive("ENTRYPOINT") ?? "null"),
      img.config.Entrypoint,
    );
    assert.deepEqual(JSON.parse(directive("CMD") ?? "null"), img.config.Cmd);
    assert.equal(directive("EXPOSE"), "8080");
    assert.equal(directive("ENV"), img.config.Env[0]);
  },
});

Deno.test({
  name:
    "image: the root filesystem holds the entrypoint, Debian's libc and libbpf, and no shell",
  ignore: req.ignore,
  async fn() {
    req.check();
    const img = await image();
    const r = img.rootfs;
    const entry = Deno.statSync(`${r}/earthworm`);
    assert.ok(entry.isFile && (entry.mode! & 0o111) !== 0);
    for (
      const lib of [
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib/x86_64-linux-gnu/libgcc_s.so.1",
        "lib/x86_64-linux-gnu/libz.so.1",
        "usr/lib/x86_64-linux-gnu/libbpf.so.1",
        "usr/lib/x86_64-linux-gnu/libelf.so.1",
        "lib64/ld-linux-x86-64.so.2",
      ]
    ) {
      if (Deno.build.arch !== "x86_64") break;
      assert.ok(Deno.statSync(`${r}/${lib}`).isFile, lib);
    }
    for (const sh of ["bin/sh", "bin/bash", "usr/bin/sh", "usr/bin/busybox"]) {
      assert.throws(() => Deno.lstatSync(`${r}/${sh}`), `no /${sh}`);
    }
    const size = Deno.statSync(img.archive).size;
    console.error(
      `image: ${mb(size)} archive (compressed), ${
        mb(duBytes(r))
      } root filesystem, ${img.inspect.Layers.length} layers`,
    );
  },
});

Deno.test({
  name: "image: the entrypoint runs inside the image and prints the version",
  ignore: req.ignore,
  async fn() {
    req.check();
    const img = await image();
    const r = await runInImage(img, ["--version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `earthworm ${VERSION}`);
  },
});

Deno.test({
  name:
    "image: mock mode inside the image answers /healthz and /api/v1/hearts and serves the embedded UI",
  ignore: req.ignore,
  async fn() {
    req.check();
    const img = await image();
    const child = inImage(img, [
      "mock",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--nodes",
      "3",
    ], "null").spawn();
    const lines: string[] = [];
    const reading = collectLines(child.stderr, lines);
    try {
      const url = await until(
        "mock mode in the image to listen",
        30_000,
        () =>
          lines.map((l) => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(l))
            .find((m) => m)?.[1],
      );
      const health = await fetch(`${url}/healthz`);
      assert.equal(health.status, 200, await health.text());
      const hearts = await (await fetch(`${url}/api/v1/hearts`)).json() as {
        hearts: { kind: string }[];
      };
      assert.equal(hearts.hearts.filter((h) => h.kind === "node").length, 3);
      const app = await fetch(`${url}/app.js`);
      assert.equal(
        await app.text(),
        Deno.readTextFileSync(`${ROOT}ui/dist/app.js`),
      );
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const status = await child.status;
      await reading;
      assert.equal(status.code, 0, lines.join("\n"));
    }
  },
});

Deno.test({
  name:
    "image: the eBPF probe inside the image loads the image's libbpf and its embedded object",
  ignore: req.ignore,
  async fn() {
    req.check();
    const img = await image();
    // The port given: no kubelet runs here to find it from.
    const r = await runInImage(img, [
      "probe",
      "--duration",
      "1",
      "--port",
      "6443",
    ]);
    const text = r.stdout + r.stderr;
    assert.doesNotMatch(text, /no-libbpf|Cannot load/, text);
    let btf = true;
    try {
      Deno.statSync("/sys/kernel/btf/vmlinux");
    } catch {
      btf = false;
    }
    if (btf) {
      assert.equal(r.code, 0, text);
      assert.match(text, /wire probe attached .*libbpf=v1\./, text);
    }
  },
});

Deno.test({
  name: "image: a second build from the same commit gives the same image",
  ignore: req.ignore,
  async fn() {
    req.check();
    const img = await image();
    const again = `${img.dir}/again.oci.tar`;
    const b = await buildImage(again);
    assert.equal(b.code, 0, b.stderr);
    const inspect = JSON.parse(
      await ok("skopeo", ["inspect", `oci-archive:${again}`]),
    );
    assert.deepEqual(inspect.Layers, img.inspect.Layers);
    assert.equal(inspect.Digest, img.inspect.Digest);
  },
});
