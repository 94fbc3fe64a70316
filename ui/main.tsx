/**
 * Entry of Earthworm's UI: picks the language, creates the store, connects it to the event
 * stream and renders the app into `#app`.
 *
 * @module
 */

import { render } from "preact";
import { App } from "./App.tsx";
import { detectLang, formatTagFor, LANG_STORAGE_KEY, setLang } from "./i18n.ts";
import { ServerClock } from "./server_clock.ts";
import { HeartStore } from "./state.ts";
import { connectStream } from "./stream.ts";

// The reader's language: their earlier choice, else the browser's.
let stored: string | null = null;
try {
  stored = localStorage.getItem(LANG_STORAGE_KEY);
} catch {
  // Storage may be unavailable (private mode): follow the browser.
}
const lang = detectLang(stored, navigator.languages);
setLang(lang, formatTagFor(lang, navigator.languages));
document.documentElement.lang = lang;

const store = new HeartStore(new ServerClock(() => performance.now()));
connectStream({
  url: "/api/v1/stream",
  store,
  signal: new AbortController().signal,
});

const root = document.getElementById("app");
if (root !== null) {
  root.textContent = ""; // the page shell's "loading" line
  render(<App store={store} />, root);
}
