import assert from "node:assert/strict";
import { setLang } from "./i18n.ts";
import { faviconHref, pageTitle, worstStatus } from "./page_title.ts";

const counts = { expired: 2, late: 1, unknown: 0, healthy: 9 };
const healthy = { expired: 0, late: 0, unknown: 0, healthy: 9 };
const none = { expired: 0, late: 0, unknown: 0, healthy: 0 };

Deno.test("the page title carries the heart and the worst status, and the viewed heart first", () => {
  setLang("en");
  assert.equal(worstStatus(counts), "expired");
  assert.equal(pageTitle(counts, null), "♥ 2 expired · Earthworm");
  assert.equal(pageTitle(healthy, null), "♥ all healthy · Earthworm");
  assert.equal(pageTitle(none, null), "♥ no hearts yet · Earthworm");
  assert.equal(
    pageTitle(counts, { name: "node-05", status: "late" }),
    "♥ node-05 late · 2 expired · Earthworm",
  );
  setLang("es");
  try {
    assert.equal(pageTitle(counts, null), "♥ 2 caducados · Earthworm");
  } finally {
    setLang("en");
  }
});

Deno.test("the favicon is a heart in the worst status's colour", () => {
  const expired = decodeURIComponent(faviconHref("expired"));
  assert.match(expired, /^data:image\/svg\+xml,<svg /);
  assert.match(expired, /fill="#ff3b3b"/);
  assert.match(decodeURIComponent(faviconHref(null)), /fill="#7d8a86"/);
});
