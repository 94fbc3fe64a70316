/**
 * The UI, embedded in the program. Text imports are inlined by `deno bundle`
 * and `deno compile` alike, so `deno run main.ts`, the single-file bundle and
 * the compiled binary serve the same bytes with nothing else on disk.
 *
 * @module
 */

import appJs from "../ui/dist/app.js" with { type: "text" };
import indexHtml from "../ui/index.html" with { type: "text" };
import styleCss from "../ui/style.css" with { type: "text" };

/** One embedded file. */
export interface Asset {
  body: string;
  contentType: string;
  etag: string;
}

function asset(body: string, contentType: string): Asset {
  // FNV-1a over the text: a cheap, stable validator for conditional requests.
  let h = 0x811c9dc5;
  for (let i = 0; i < body.length; i++) {
    h ^= body.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return {
    body,
    contentType,
    etag: `"${(h >>> 0).toString(16)}-${body.length}"`,
  };
}

/** Embedded UI files by request path. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["/", asset(indexHtml, "text/html; charset=utf-8")],
  ["/app.js", asset(appJs, "text/javascript; charset=utf-8")],
  ["/style.css", asset(styleCss, "text/css; charset=utf-8")],
]);
