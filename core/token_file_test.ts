import assert from "node:assert/strict";
import { FakeClock } from "./fake_clock.ts";
import { TOKEN_REFRESH_MS, tokenFileReader } from "./token_file.ts";

Deno.test("a token file is read again only after the refresh interval", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/token`;
    await Deno.writeTextFile(path, "first\n");
    const clock = new FakeClock();
    const read = tokenFileReader(path, { clock });
    assert.equal(await read(), "first");
    await Deno.writeTextFile(path, "second");
    assert.equal(await read(), "first", "cached within the interval");
    await clock.advance(TOKEN_REFRESH_MS + 1);
    assert.equal(await read(), "second");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an unreadable token file names the file and the fix", async () => {
  const read = tokenFileReader("/nonexistent/token", { hint: "mount it" });
  await assert.rejects(
    read(),
    /Cannot read the token file "\/nonexistent\/token": .*: mount it$/,
  );
});
