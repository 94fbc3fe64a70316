/** Earthworm's version, kept in step with deno.json and CHANGELOG.md. */
export const VERSION = "0.1.0";
