/**
 * Browser tests: `earthworm mock` in Debian's Chromium, driven by
 * `npm:playwright-core`. They check drawing and updating through the UI's
 * test hooks (`data-heart-id`, `data-status`, `data-beats`, `data-spikes`,
 * `data-draws`, `data-connection`), not pixels.
 */

import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { INCIDENTS, nodeName } from "../sim/simulator.ts";
import { CHROMIUM, launchChromium, startMock } from "../ui/dev_browser.ts";
import { executableMissing, prereq } from "./prereq.ts";
import { eventually } from "./wait.ts";

const chromium = prereq(
  "Chromium",
  executableMissing(
    CHROMIUM,
    "install Debian's Chromium with `apt-get install chromium`",
  ),
);

/** What a card shows, read through its test hooks. */
interface CardState {
  id: string;
  status: string;
  beats: number;
  spikes: number;
  draws: number;
}

function readCards(page: Page): Promise<CardState[]> {
  return page.$$eval(".card[data-heart-id]", (cards) =>
    cards.map((card) => {
      const el = card as HTMLElement;
      const trace = el.querySelector<HTMLElement>(".cardiogram");
      return {
        id: el.dataset.heartId ?? "",
        status: el.dataset.status ?? "",
        beats: Number(el.dataset.beats),
        spikes: Number(trace?.dataset.spikes ?? 0),
        draws: Number(trace?.dataset.draws ?? 0),
      };
    }));
}

Deno.test({
  name:
    "browser: mock mode draws live cardiograms, opens a detail view, shows a heart expire and recover and an outage as unknown",
  ignore: chromium.ignore,
  async fn() {
    chromium.check();
    await using mock = await startMock(["--speed", "10"]);
    const browser = await launchChromium();
    try {
      // Tall enough that every card of the default cluster is rendered.
      const page = await browser.newPage({
        viewport: { width: 1280, height: 1400 },
      });
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(err.message));
      await page.goto(`${mock.url}/`);
      await page.waitForSelector("[data-connection=live]", { timeout: 10_000 });

      // Record every status each card shows from now on, and what the page
      // shows while its banner says the API server is unreachable.
      await page.evaluate(() => {
        const log: Record<string, string[]> = {};
        const blind = { statuses: [] as string[], banner: "" };
        const wireTrouble: string[] = [];
        const causes: Record<string, string[]> = {};
        Object.assign(globalThis, {
          statusLog: log,
          blind,
          wireTrouble,
          causes,
        });
        setInterval(() => {
          const banner = document.querySelector<HTMLElement>(
            "[data-source=disconnected]",
          );
          if (banner !== null) blind.banner = banner.textContent ?? "";
          const sourceCause = banner?.dataset.cause;
          if (sourceCause) {
            const c = (causes["source"] ??= []);
            if (!c.includes(sourceCause)) c.push(sourceCause);
          }
          for (
            const el of document.querySelectorAll<HTMLElement>(
              ".card[data-heart-id]",
            )
          ) {
            const status = el.dataset.status!;
            const cause = el.dataset.cause;
            if (cause) {
              const c = (causes[el.dataset.heartId!] ??= []);
              if (!c.includes(cause)) c.push(cause);
            }
            if (
              el.dataset.wireTrouble === "true" &&
              !wireTrouble.includes(el.dataset.heartId!)
            ) wireTrouble.push(el.dataset.heartId!);
            const seen = (log[el.dataset.heartId!] ??= []);
            if (seen[seen.length - 1] !== status) seen.push(status);
            if (banner !== null && !blind.statuses.includes(status)) {
              blind.statuses.push(status);
            }
          }
        }, 100);
      });

      // At least 12 cardiograms drawn with spikes, then updating.
      const first = await eventually(
        "12 cardiograms with spikes",
        20_000,
        async () => {
          const cards = await readCards(page);
          return cards.filter((c) => c.spikes > 0).length >= 12
            ? cards
            : undefined;
        },
      );
      const before = new Map(first.map((c) => [c.id, c]));
      const updated = await eventually(
        "12 cardiograms updating",
        20_000,
        async () => {
          const cards = await readCards(page);
          const moving = cards.filter((c) => {
            const b = before.get(c.id);
            return b !== undefined && c.beats > b.beats && c.draws > b.draws &&
              c.spikes > 0;
          });
          return moving.length >= 12 ? moving : undefined;
        },
      );
      assert.ok(updated.length >= 12);

      // The scripted death: a node's heart turns expired, then healthy again.
      const dying = `kube-node-lease/${nodeName(INCIDENTS.death.node)}`;
      const story = await eventually(
        `${dying} to expire and recover`,
        60_000,
        async () => {
          const log = await page.evaluate(() =>
            (globalThis as unknown as { statusLog: Record<string, string[]> })
              .statusLog
          );
          const seen = log[dying] ?? [];
          const expiredAt = seen.indexOf("expired");
          return expiredAt >= 0 && seen.slice(expiredAt).includes("healthy")
            ? seen
            : undefined;
        },
      );
      assert.ok(story.includes("expired"));
      const causes = await page.evaluate(() =>
        (globalThis as unknown as { causes: Record<string, string[]> }).causes
      );
      assert.deepEqual(
        causes[dying],
        ["kubelet"],
        "the dead node's card said its kubelet sent no renewal",
      );

      // The scripted API server outage: hearts turn unknown, never expired.
      const blind = await eventually(
        "the API server outage",
        60_000,
        async () => {
          // The banner's cause comes in its own diagnosis events: "observer"
          // (Earthworm cannot see, nobody blamed) until a kubelet's renewal
          // goes unanswered on the wire, then "apiserver". Wait for that.
          const seen = await page.evaluate(() => {
            const g = globalThis as unknown as {
              blind: { statuses: string[]; banner: string };
              causes: Record<string, string[]>;
            };
            return { ...g.blind, sourceCauses: g.causes.source ?? [] };
          });
          return seen.statuses.includes("unknown") &&
              seen.sourceCauses.includes("apiserver")
            ? seen
            : undefined;
        },
      );
      assert.ok(
        !blind.statuses.includes("expired"),
        `statuses in the outage: ${blind.statuses}`,
      );
      assert.match(blind.banner, /API server unreachable — hearts unknown/);
      const sourceCauses = blind.sourceCauses;
      assert.ok(
        sourceCauses.every((c) => c === "observer" || c === "apiserver"),
        `the outage banner blamed only the API server, or nobody: ${sourceCauses}`,
      );

      // Search and the kind filter narrow the overview.
      await page.fill("input[type=search]", nodeName(0));
      await page.waitForFunction(() =>
        document.querySelectorAll(".card").length === 1
      );
      await page.fill("input[type=search]", "");
      await page.selectOption("select[aria-label=Kind]", "lease");
      await page.waitForFunction(() => {
        const ids = [...document.querySelectorAll<HTMLElement>(".card")]
          .map((c) => c.dataset.heartId ?? "");
        return ids.length > 0 &&
          ids.every((id) => !id.startsWith("kube-node-lease/"));
      });
      await page.selectOption("select[aria-label=Kind]", "");

      // The late node's renewals were lost on the wire: its card is marked.
      const troubled = await page.evaluate(() =>
        (globalThis as unknown as { wireTrouble: string[] }).wireTrouble
      );
      assert.ok(
        troubled.includes(`kube-node-lease/${nodeName(INCIDENTS.late.node)}`),
        `cards marked with wire trouble: ${troubled}`,
      );

      // A detail view: its own cardiogram, statistics and the wire trace.
      await page.click(`.card[data-heart-id="kube-node-lease/${nodeName(0)}"]`);
      await page.waitForSelector(
        `[data-detail="kube-node-lease/${nodeName(0)}"]`,
      );
      assert.equal(
        new URL(page.url()).hash,
        `#/heart/kube-node-lease/${nodeName(0)}`,
      );
      await eventually(
        "the detail cardiogram to show spikes",
        10_000,
        async () => {
          const spikes = await page.$eval(
            ".detail .cardiogram",
            (el) => Number((el as HTMLElement).dataset.spikes),
          );
          return spikes > 0 ? spikes : undefined;
        },
      );
      const stats = await page.textContent("[data-stats]");
      assert.match(stats ?? "", /median/);
      // The simulated kubelets' PUTs arrive as wire events: the wire trace.
      await page.waitForSelector("[data-wire=chart]", { timeout: 15_000 });
      assert.match(
        await page.textContent("[data-wire=chart]") ?? "",
        /exchanges \(\d+ renewals identified exactly\) · last .* retransmits/,
      );
      await page.click("a.back");
      await page.waitForSelector(".card[data-heart-id]");
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  },
});

Deno.test({
  name:
    "browser: the UI shows a lost connection and resumes when the server restarts",
  ignore: chromium.ignore,
  async fn() {
    chromium.check();
    let mock = await startMock(["--speed", "5"]);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({
        viewport: { width: 1280, height: 800 },
      });
      await page.goto(`${mock.url}/`);
      await page.waitForSelector("[data-connection=live]", { timeout: 10_000 });
      await page.waitForSelector(".card[data-heart-id]");

      const port = new URL(mock.url).port;
      const closedAt = Date.now();
      await mock.close();
      await page.waitForSelector(
        "[data-connection=reconnecting], [data-connection=offline]",
        {
          timeout: 10_000,
        },
      );
      // Without the stream, no card may keep saying healthy.
      const blindAt = await eventually(
        "every card to stop saying healthy",
        10_000,
        async () =>
          (await readCards(page)).every((c) => c.status !== "healthy")
            ? Date.now()
            : undefined,
      );
      assert.ok(
        blindAt - closedAt <= 7_000,
        `cards said healthy for ${
          blindAt - closedAt
        } ms after the server went away`,
      );
      assert.match(
        await page.textContent("[data-stream=lost]") ?? "",
        /stream lost \d+ s ago/,
      );
      mock = await startMock(["--speed", "5", "--port", port]);
      await page.waitForSelector("[data-connection=live]", { timeout: 20_000 });
      const before = await readCards(page);
      await eventually("beats from the restarted server", 15_000, async () => {
        const after = await readCards(page);
        const grew = after.filter((c) =>
          c.beats > (before.find((b) => b.id === c.id)?.beats ?? Infinity)
        );
        return grew.length > 0 ? grew : undefined;
      });
    } finally {
      await browser.close();
      await mock.close();
    }
  },
});

Deno.test({
  name:
    "browser: when the server freezes, every card stops saying healthy within a few seconds and says why; live statuses return when it thaws",
  ignore: chromium.ignore,
  async fn() {
    chromium.check();
    await using mock = await startMock(["--no-incidents"]);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({
        viewport: { width: 1280, height: 1400 },
      });
      await page.goto(`${mock.url}/`);
      await page.waitForSelector("[data-connection=live]", { timeout: 10_000 });
      await eventually("healthy cards", 20_000, async () => {
        const cards = await readCards(page);
        return cards.length >= 12 && cards.every((c) => c.status === "healthy")
          ? cards
          : undefined;
      });

      // SIGSTOP: the stream stays open but says nothing, as behind a
      // partition or a hung proxy; the browser sees no error.
      const frozenAt = Date.now();
      mock.kill("SIGSTOP");
      const blindAt = await eventually(
        "every card to stop saying healthy",
        20_000,
        async () => {
          const cards = await readCards(page);
          return cards.length > 0 && cards.every((c) => c.status !== "healthy")
            ? Date.now()
            : undefined;
        },
      );
      const banner = await page.textContent("[data-stream=lost]") ?? "";
      const healthyCount = await page.textContent("[data-count=healthy] b");
      console.log(
        `frozen server: cards stopped saying healthy after ${
          blindAt - frozenAt
        } ms; banner "${banner}"`,
      );
      assert.ok(
        blindAt - frozenAt <= 8_000,
        `cards said healthy for ${blindAt - frozenAt} ms after the freeze`,
      );
      assert.match(banner, /stream lost \d+ s ago/);
      assert.equal(healthyCount, "0");

      mock.kill("SIGCONT");
      await page.waitForSelector("[data-connection=live]", { timeout: 20_000 });
      await eventually("live statuses again", 20_000, async () => {
        const cards = await readCards(page);
        return cards.length >= 12 &&
            cards.every((c) => c.status === "healthy") &&
            await page.$("[data-stream=lost]") === null
          ? cards
          : undefined;
      });
    } finally {
      mock.kill("SIGCONT");
      await browser.close();
    }
  },
});

Deno.test({
  name:
    "browser: the overview of 3,000 hearts renders and draws only the visible cards",
  ignore: chromium.ignore,
  async fn() {
    chromium.check();
    await using mock = await startMock(["--nodes", "3000"]);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({
        viewport: { width: 1280, height: 800 },
      });
      await page.goto(`${mock.url}/`);
      await page.waitForSelector(".card[data-heart-id]", { timeout: 20_000 });
      await page.waitForFunction(() =>
        Number(
          document.querySelector<HTMLElement>("[data-shown]")?.dataset.shown,
        ) > 3000
      );
      const counts = await page.evaluate(() => ({
        cards: document.querySelectorAll(".card").length,
        canvases: document.querySelectorAll("canvas").length,
      }));
      assert.ok(
        counts.cards > 0 && counts.cards <= 40,
        `${counts.cards} cards rendered`,
      );
      assert.equal(counts.canvases, counts.cards, "one chart per visible card");
      // Scrolled to the end, the last hearts are rendered and drawn instead.
      await page.evaluate(() => {
        const grid = document.querySelector(".grid-scroll")!;
        grid.scrollTop = grid.scrollHeight;
      });
      await page.waitForSelector(
        '.card[data-heart-id="kube-node-lease/node-3000"]',
      );
      assert.ok(
        await page.evaluate(() =>
          document.querySelectorAll("canvas").length <= 40
        ),
      );
    } finally {
      await browser.close();
    }
  },
});
