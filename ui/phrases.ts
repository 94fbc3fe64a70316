/**
 * The server's sentences in the reader's language: a {@linkcode Phrase}
 * (a message id and its values) worded from the catalogue, its durations,
 * times and "nobody"s formatted here. Without a phrase (an older server)
 * the server's English text is shown.
 *
 * @module
 */

import type { Evidence, Phrase } from "../core/api_types.ts";
import { formatMs, formatSeconds, timeOfDay } from "./format.ts";
import { type MessageArgs, t } from "./i18n.ts";
import type { UiKey } from "./messages_en.ts";

/** What a null argument stands for, by argument name. */
const NULL_WORDS: Readonly<Record<string, UiKey>> = {
  from: "null.nobody",
  to: "null.nobody",
  holder: "null.holder",
  lease: "null.none",
  reason: "null.reason",
};

/** One argument as text: `…Ms` a duration, `…At` a time of day. */
function argument(
  name: string,
  value: string | number | null,
): string | number {
  if (value === null) return t(NULL_WORDS[name] ?? "null.none");
  if (name.endsWith("Ms") && typeof value === "number") {
    return value < 1000 ? formatMs(value) : formatSeconds(value / 1000);
  }
  if (name.endsWith("At") && typeof value === "string") {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? value : timeOfDay(ms);
  }
  return value;
}

/** `phrase` worded in the current language, or `english` when there is none. */
export function phraseText(
  phrase: Phrase | undefined,
  english: string,
): string {
  if (phrase === undefined) return english;
  const args: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(phrase.args)) {
    args[name] = argument(name, value);
  }
  return t(`phrase.${phrase.id}`, args as MessageArgs);
}

/** A piece of evidence worded in the current language, prefixed with its node when it has one. */
export function evidenceText(e: Evidence): string {
  if (e.phrase === undefined) return e.text;
  const text = phraseText(e.phrase, e.text);
  return e.node === undefined ? text : `${e.node}: ${text}`;
}
