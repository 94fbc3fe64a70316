/**
 * Browser test of several clusters in the UI: Debian's Chromium, driven by
 * `npm:playwright-core`, against a hub of two clusters served in-process.
 * Each card names its cluster, the cluster filter narrows the overview, and
 * a card opens its own heart's detail with the beats of its cluster.
 */

import assert from "node:assert/strict";
import type { Lease } from "../core/lease_types.ts";
import { systemClock } from "../core/clock.ts";
import { HeartHub } from "../server/heart_hub.ts";
import { createApp } from "../server/api.ts";
import { serveApp } from "../server/http_server.ts";
import { CHROMIUM, launchChromium } from "../ui/dev_browser.ts";
import { executableMissing, prereq } from "./prereq.ts";
import { until } from "./wait.ts";

const chromium = prereq(
  "Chromium",
  executableMissing(
    CHROMIUM,
    "install Debian's Chromium with `apt-get install chromium`",
  ),
);

function nodeLease(name: string, renewMs: number): Lease {
  return {
    metadata: { namespace: "kube-node-lease", name },
    spec: {
      holderIdentity: name,
      leaseDurationSeconds: 40,
      renewTime: new Date(renewMs).toISOString(),
    },
  };
}

Deno.test({
  name:
    "browser: several clusters show a cluster on each card, a cluster filter, and each heart's own detail",
  ignore: chromium.ignore,
  async fn() {
    chromium.check();
    const hub = new HeartHub({
      clock: systemClock,
      source: { kind: "cluster", name: "east, west" },
      clusters: [
        { name: "east", server: "https://east.example:6443" },
        { name: "west", server: "https://west.example:6443" },
      ],
    });
    const now = Date.now();
    for (const [cluster, nodes] of [["east", 2], ["west", 3]] as const) {
      const sink = hub.sink(cluster);
      sink.source(true, undefined, now);
      const names = Array.from({ length: nodes }, (_, i) => `node-${i}`);
      sink.resync(names.map((n) => nodeLease(n, now - 30_000)), now - 30_000);
      // Three beats each, ten seconds apart, the last just now.
      for (const at of [now - 20_000, now - 10_000, now]) {
        for (const n of names) {
          sink.event({ type: "MODIFIED", object: nodeLease(n, at) }, at);
        }
      }
    }
    const stop = new AbortController();
    const server = await serveApp(createApp({ hub, loopbackOnly: true }), {
      host: "127.0.0.1",
      port: 0,
      signal: stop.signal,
    });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({
        viewport: { width: 1280, height: 900 },
      });
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(err.message));
      await page.goto(`${server.url}/`);
      await page.waitForSelector("[data-connection=live]", { timeout: 20_000 });
      const cards = () =>
        page.$$eval(".card[data-heart-id]", (els) =>
          els.map((el) => ({
            id: (el as HTMLElement).dataset.heartId!,
            cluster: el.querySelector(".cluster")?.textContent ?? null,
          })));
      const all = await until("five cards", 20_000, async () => {
        const c = await cards();
        return c.length === 5 && c;
      });
      assert.deepEqual(all.map((c) => [c.id, c.cluster]).sort(), [
        ["east/kube-node-lease/node-0", "east"],
        ["east/kube-node-lease/node-1", "east"],
        ["west/kube-node-lease/node-0", "west"],
        ["west/kube-node-lease/node-1", "west"],
        ["west/kube-node-lease/node-2", "west"],
      ]);

      // The cluster filter lists both and narrows the overview.
      const options = await page.$$eval(
        "select[aria-label=Cluster] option",
        (els) => els.map((el) => (el as HTMLOptionElement).value),
      );
      assert.deepEqual(options, ["", "east", "west"]);
      await page.selectOption("select[aria-label=Cluster]", "east");
      await until("only the east cards", 10_000, async () => {
        const c = await cards();
        return c.length === 2 && c.every((x) => x.cluster === "east");
      });
      assert.match(page.url(), /#\/\?cluster=east$/);

      // A card opens its own heart, whose beats come from its cluster.
      await page.click('.card[data-heart-id="east/kube-node-lease/node-1"]');
      await page.waitForSelector(
        '[data-detail="east/kube-node-lease/node-1"][data-status=healthy]',
        { timeout: 10_000 },
      );
      assert.match(page.url(), /#\/heart\/east\/kube-node-lease\/node-1$/);
      const intervals = await until(
        "the detail's intervals from its beats",
        10_000,
        async () => {
          const stats = await page.$$eval(
            "[data-stats] .stat",
            (els) =>
              els.map((el) => [
                el.querySelector(".label")?.textContent,
                el.querySelector(".value")?.textContent,
              ]),
          );
          const n = Number(stats.find(([l]) => l === "intervals")?.[1]);
          return n > 0 && n;
        },
      );
      // Three beats: the first has no interval before it.
      assert.equal(intervals, 2);
      assert.equal(await page.$("[data-detail] .error"), null);
      assert.equal(
        await page.$eval("[data-detail] h2 .cluster", (el) => el.textContent),
        "east",
      );

      // One cluster unseen: only its cards turn unknown, and the banner
      // names it.
      hub.sink("west").source(false, "watch failed: refused", Date.now());
      await page.goto(`${server.url}/#/`);
      const statuses = await until(
        "the west cards to turn unknown",
        10_000,
        async () => {
          const c = await page.$$eval(
            ".card[data-heart-id]",
            (els) =>
              els.map((el) => [
                (el as HTMLElement).dataset.heartId!,
                (el as HTMLElement).dataset.status!,
              ]),
          );
          return c.length === 5 &&
            c.filter(([id]) => id!.startsWith("west/")).every(([, st]) =>
              st === "unknown"
            ) && c;
        },
      );
      for (const [id, status] of statuses) {
        if (id!.startsWith("east/")) {
          assert.equal(status, "healthy", String(id));
        }
      }
      const banner = await page.textContent("[data-source=disconnected]");
      assert.match(banner!, /cluster "west": watch failed: refused/);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      stop.abort();
      hub.events.closeAll();
      await server.finished;
    }
  },
});
