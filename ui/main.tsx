/**
 * Entry of Earthworm's UI.
 *
 * @module
 */
import { render } from "preact";

const root = document.getElementById("app");
if (root !== null) {
  render(<p class="boot">Earthworm UI is being built.</p>, root);
}
