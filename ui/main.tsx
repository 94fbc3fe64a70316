/**
 * Entry of Earthworm's UI: creates the store, connects it to the event
 * stream and renders the app into `#app`.
 *
 * @module
 */

import { render } from "preact";
import { App } from "./App.tsx";
import { ServerClock } from "./server_clock.ts";
import { HeartStore } from "./state.ts";
import { connectStream } from "./stream.ts";

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
