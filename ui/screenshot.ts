/**
 * Takes the README's screenshot of the UI: starts `earthworm mock`, opens it
 * in Debian's Chromium, lets the cardiograms fill up and writes a PNG.
 *
 * `deno run -A ui/screenshot.ts [--out docs/screenshot.png] [--hash #/] [--wait 12] [--speed 4]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { launchChromium, startMock } from "./dev_browser.ts";

/** Options of {@linkcode takeScreenshot}. */
export interface ScreenshotOptions {
  out: string;
  /** Location hash to open, e.g. `#/heart/kube-node-lease/node-05`. */
  hash: string;
  /** Seconds to wait before the picture. */
  waitSeconds: number;
  speed: number;
  width: number;
  height: number;
  nodes: number;
}

/** Starts the mock, opens the UI and saves a screenshot to `options.out`. */
export async function takeScreenshot(
  options: ScreenshotOptions,
): Promise<void> {
  await using mock = await startMock([
    "--speed",
    String(options.speed),
    "--nodes",
    String(options.nodes),
  ]);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({
      viewport: { width: options.width, height: options.height },
      deviceScaleFactor: 1,
    });
    await page.goto(`${mock.url}/${options.hash}`);
    await page.waitForSelector("[data-connection=live]");
    await page.waitForTimeout(options.waitSeconds * 1000);
    const dir = options.out.replace(/\/[^/]*$/, "");
    if (dir !== options.out) await Deno.mkdir(dir, { recursive: true });
    await page.screenshot({ path: options.out });
  } finally {
    await browser.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string", default: "docs/screenshot.png" },
      hash: { type: "string", default: "#/" },
      wait: { type: "string", default: "12" },
      speed: { type: "string", default: "4" },
      width: { type: "string", default: "1280" },
      height: { type: "string", default: "800" },
      nodes: { type: "string", default: "12" },
    },
  });
  await takeScreenshot({
    out: values.out,
    hash: values.hash,
    waitSeconds: Number(values.wait),
    speed: Number(values.speed),
    width: Number(values.width),
    height: Number(values.height),
    nodes: Number(values.nodes),
  });
  console.error(`wrote ${values.out}`);
}
