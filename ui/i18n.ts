/**
 * The UI's languages: English and Spanish. The language is the one the
 * reader picked with the header's switch (kept in `localStorage`), else the
 * first of the browser's `navigator.languages` that Earthworm speaks, else
 * English. {@linkcode t} words a message of the catalogue in the current
 * language; numbers in its arguments and plural forms follow the locale
 * through `Intl`.
 *
 * @module
 */

import { type Message, type MessageKey, MESSAGES_EN } from "./messages_en.ts";
import { MESSAGES_ES } from "./messages_es.ts";

/** A language of the UI. */
export type Lang = "en" | "es";

/** The languages, each named in itself, for the switch. */
export const LANGUAGES: readonly {
  code: Lang;
  /** The language's own name, e.g. `Español`. */
  name: string;
  /** Its short form on the switch, e.g. `ES`. */
  short: string;
}[] = [
  { code: "en", name: "English", short: "EN" },
  { code: "es", name: "Español", short: "ES" },
];

/** The catalogue: every message in every language. */
export const CATALOGUE: Readonly<
  Record<Lang, Readonly<Record<MessageKey, Message>>>
> = { en: MESSAGES_EN, es: MESSAGES_ES };

/** `localStorage` key of the reader's choice. */
export const LANG_STORAGE_KEY = "earthworm.lang";

/** Arguments of a message: `{name}` in its text is replaced by `args.name`. */
export type MessageArgs = Readonly<Record<string, string | number>>;

function isLang(value: string | null | undefined): value is Lang {
  return value === "en" || value === "es";
}

/**
 * The language to show: the stored choice when it is one of ours, else the
 * first browser language we speak (`es-MX` counts as `es`), else English.
 */
export function detectLang(
  stored: string | null,
  languages: readonly string[],
): Lang {
  if (isLang(stored)) return stored;
  for (const tag of languages) {
    const primary = tag.toLowerCase().split("-")[0];
    if (isLang(primary)) return primary;
  }
  return "en";
}

/**
 * The locale that numbers and times are formatted in: the browser's own
 * tag when it is of `lang` (`es-MX`, `en-GB`), else `lang` itself.
 */
export function formatTagFor(lang: Lang, languages: readonly string[]): string {
  for (const tag of languages) {
    if (tag.toLowerCase().split("-")[0] !== lang) continue;
    try {
      return Intl.getCanonicalLocales(tag)[0] ?? lang;
    } catch {
      // Not a valid tag: keep looking.
    }
  }
  return lang;
}

let currentLang: Lang = "en";
let currentTag = "en";
const listeners = new Set<(lang: Lang) => void>();

/** The language shown now. */
export function lang(): Lang {
  return currentLang;
}

/** The locale tag numbers and times are formatted in now. */
export function formatTag(): string {
  return currentTag;
}

/**
 * Shows the UI in `next` (formatting numbers for `tag`, by default the
 * language itself) and tells the listeners.
 */
export function setLang(next: Lang, tag: string = next): void {
  if (next === currentLang && tag === currentTag) return;
  currentLang = next;
  currentTag = tag;
  for (const listener of listeners) listener(next);
}

/** Calls `listener` whenever the language changes; returns the unsubscribe function. */
export function onLangChange(listener: (lang: Lang) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const numberFormats = new Map<string, Intl.NumberFormat>();
const pluralRules = new Map<string, Intl.PluralRules>();

/**
 * `n` formatted for locale `tag` without digit grouping (`3000`, `9.8` or
 * `9,8`), with exactly `fractionDigits` decimals when given.
 */
export function formatNumber(
  n: number,
  tag: string = currentTag,
  fractionDigits?: number,
): string {
  const key = `${tag}|${fractionDigits ?? ""}`;
  let format = numberFormats.get(key);
  if (format === undefined) {
    format = new Intl.NumberFormat(
      tag,
      fractionDigits === undefined ? { useGrouping: false } : {
        useGrouping: false,
        minimumFractionDigits: fractionDigits,
        maximumFractionDigits: fractionDigits,
      },
    );
    numberFormats.set(key, format);
  }
  return format.format(n);
}

function pluralOf(tag: string, n: number): Intl.LDMLPluralRule {
  let rules = pluralRules.get(tag);
  if (rules === undefined) {
    rules = new Intl.PluralRules(tag);
    pluralRules.set(tag, rules);
  }
  return rules.select(n);
}

/**
 * `key` worded in `language`, its `{name}` placeholders filled from `args`
 * (numbers formatted for `tag`); a plural message picks its form by
 * `args.count`.
 */
export function translate(
  language: Lang,
  key: MessageKey,
  args: MessageArgs = {},
  tag: string = language,
): string {
  const message = CATALOGUE[language][key] ?? CATALOGUE.en[key];
  let text: string;
  if (typeof message === "string") text = message;
  else {
    const count = Number(args["count"] ?? 0);
    text = message[pluralOf(tag, count)] ?? message.other;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = args[name];
    if (value === undefined) return whole;
    return typeof value === "number" ? formatNumber(value, tag) : value;
  });
}

/** `key` worded in the current language; see {@linkcode translate}. */
export function t(key: MessageKey, args?: MessageArgs): string {
  return translate(currentLang, key, args, currentTag);
}
