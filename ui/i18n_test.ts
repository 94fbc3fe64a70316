import assert from "node:assert/strict";
import {
  CATALOGUE,
  detectLang,
  formatTagFor,
  type Lang,
  LANGUAGES,
  setLang,
  t,
  translate,
} from "./i18n.ts";
import type { Message, MessageKey } from "./messages_en.ts";
import { evidenceText, phraseText } from "./phrases.ts";

/**
 * Keys whose Spanish is the English, on purpose: names and symbols that are
 * the same in both languages.
 */
const SAME_IN_BOTH: ReadonlySet<string> = new Set([
  "app.name", // Earthworm
  "cause.kubelet", // a program's name
  "wire.axis", // ms
  "card.stale", // ({reason})
  "title.worst", // {count} {status}
]);

function forms(message: Message): string[] {
  return typeof message === "string" ? [message] : Object.values(message);
}

function placeholders(text: string): string[] {
  return [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();
}

Deno.test("the catalogue has every key in English and Spanish, each worded for Spanish", () => {
  const en = Object.keys(CATALOGUE.en).sort();
  const es = Object.keys(CATALOGUE.es).sort();
  assert.deepEqual(es, en, "the same keys in both languages");
  assert.ok(en.length > 150, `a full catalogue: ${en.length} keys`);
  const untranslated: string[] = [];
  for (const key of en as MessageKey[]) {
    const english = CATALOGUE.en[key];
    const spanish = CATALOGUE.es[key];
    for (const [lang, message] of [["en", english], ["es", spanish]] as const) {
      assert.ok(
        forms(message).every((f) => f.trim().length > 0),
        `${lang} ${key} is not empty`,
      );
      if (typeof message !== "string") {
        assert.ok(message.other, `${lang} ${key} has its "other" form`);
        assert.ok(message.one, `${lang} ${key} has its "one" form`);
      }
    }
    if (JSON.stringify(english) === JSON.stringify(spanish)) {
      if (!SAME_IN_BOTH.has(key)) untranslated.push(key);
    } else {
      assert.ok(!SAME_IN_BOTH.has(key), `${key} is whitelisted but translated`);
    }
    // Spanish fills in the same values as English.
    const want = placeholders(forms(english).join(" "));
    const got = placeholders(forms(spanish).join(" "));
    assert.deepEqual(
      [...new Set(got)],
      [...new Set(want)],
      `${key}: the same {placeholders} in Spanish as in English`,
    );
  }
  assert.deepEqual(untranslated, [], "keys whose Spanish is the English");
});

Deno.test("the language is the reader's choice, else the browser's first we speak, else English", () => {
  assert.equal(detectLang(null, ["es-MX", "en"]), "es");
  assert.equal(detectLang(null, ["fr-FR", "es"]), "es");
  assert.equal(detectLang(null, ["de", "fr"]), "en");
  assert.equal(detectLang("en", ["es-ES"]), "en");
  assert.equal(detectLang("xx", ["es-ES"]), "es");
  assert.equal(formatTagFor("es", ["es-MX", "en"]), "es-MX");
  assert.equal(formatTagFor("en", ["es-MX"]), "en");
  assert.deepEqual(LANGUAGES.map((l) => l.code), ["en", "es"] satisfies Lang[]);
});

Deno.test("messages fill their values, pick plural forms and format numbers for the language", () => {
  assert.equal(translate("en", "card.beats", { count: 1 }), "1 beat");
  assert.equal(translate("en", "card.beats", { count: 3 }), "3 beats");
  assert.equal(translate("es", "card.beats", { count: 1 }), "1 latido");
  assert.equal(translate("es", "card.beats", { count: 3000 }), "3000 latidos");
  assert.equal(
    translate("es", "source.speed", { speed: 2.5 }),
    "2,5 veces la velocidad real",
  );
});

Deno.test("the server's phrases are worded in Spanish, with durations, times and nobody formatted", () => {
  setLang("es");
  try {
    assert.equal(
      phraseText(
        { id: "kubelet.noRenewal", args: { silentMs: 24_500 } },
        "kubelet sent no renewal for 24.5 s",
      ),
      "el kubelet no envió ninguna renovación en 24,5 s",
    );
    assert.equal(
      phraseText(
        {
          id: "handover.moved",
          args: { from: "cp-1", to: null, silentMs: 40_000 },
        },
        "",
      ),
      "el liderazgo pasó de cp-1 a nadie tras 40,0 s sin renovaciones",
    );
    assert.equal(
      evidenceText({
        at: "2025-01-01T00:00:00Z",
        text: "n1: renewal answered after 3.0 s",
        phrase: { id: "evidence.slow", args: { latencyMs: 3000 } },
        node: "n1",
      }),
      "n1: renovación respondida tras 3,0 s",
    );
    assert.equal(
      phraseText(
        { id: "evidence.retransmits", args: { count: 1, conn: "a→b" } },
        "",
      ),
      "1 retransmisión en la conexión a→b del kubelet",
    );
    // Without a phrase (an older server), its English text.
    assert.equal(phraseText(undefined, "as sent"), "as sent");
  } finally {
    setLang("en");
  }
  assert.equal(t("status.expired"), "expired");
});

/**
 * Text that reaches the screen without the catalogue: JSX text with words,
 * or a title, placeholder, aria-label or alt attribute with a literal.
 */
function literalTexts(source: string): string[] {
  const found: string[] = [];
  const code = source
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  for (
    const m of code.matchAll(
      // A `>` that is not an arrow's `=>`, text with a word, then `<`.
      /(?<![=-])>([^<>{}();=&|?]*[A-Za-z]{2,}[^<>{}();=]*)</g,
    )
  ) {
    const text = m[1]!.trim();
    if (text.length > 0) found.push(text);
  }
  for (
    const m of code.matchAll(
      /\b(title|placeholder|aria-label|alt)=(["'])([^"']*[A-Za-z][^"']*)\2/g,
    )
  ) {
    found.push(`${m[1]}=${m[3]}`);
  }
  return found;
}

Deno.test("every word the UI's components show comes from the catalogue", async () => {
  const dir = new URL("./", import.meta.url);
  const scanned: string[] = [];
  const literals: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".tsx")) continue;
    scanned.push(e.name);
    const source = await Deno.readTextFile(new URL(e.name, dir));
    for (const text of literalTexts(source)) {
      literals.push(`${e.name}: ${text}`);
    }
  }
  assert.ok(scanned.length >= 8, `components scanned: ${scanned}`);
  assert.deepEqual(literals, [], "literal texts outside the catalogue");
  // The scan does find a literal where there is one.
  assert.deepEqual(literalTexts(`<p class="x">No hearts yet</p>`), [
    "No hearts yet",
  ]);
  assert.deepEqual(literalTexts(`<input placeholder="Search" />`), [
    "placeholder=Search",
  ]);
});
