/**
 * The top bar: the source, counts of hearts by status (click to filter), the
 * connection state, the beep toggle and the language switch. On a phone it
 * wraps into rows so the counts and the live state stay in sight.
 *
 * @module
 */

import type { HeartStatus, SourceState } from "../core/api_types.ts";
import { formatNumber, type Lang, LANGUAGES, t } from "./i18n.ts";
import type { ConnectionState } from "./state.ts";

/** Props of {@linkcode Header}. */
export interface HeaderProps {
  source: SourceState | null;
  connection: ConnectionState;
  counts: Record<HeartStatus, number>;
  activeStatus: HeartStatus | "";
  onStatus: (status: HeartStatus | "") => void;
  beep: boolean;
  onBeep: (on: boolean) => void;
  lang: Lang;
  onLang: (lang: Lang) => void;
}

const ORDER: readonly HeartStatus[] = ["expired", "late", "unknown", "healthy"];

/** The source as words: its kind, and its name (a simulation is named for what it is). */
function sourceText(source: SourceState): string {
  const kind = t(`source.${source.kind}`);
  return source.kind === "mock"
    ? t("source.simulated")
    : `${kind} · ${source.name}`;
}

/** Earthworm's top bar. */
export function Header(props: HeaderProps) {
  const { source, connection, counts } = props;
  return (
    <header class="top">
      <a class="brand" href="#/">
        <svg viewBox="0 0 40 16" width="40" height="16" aria-hidden="true">
          <polyline points="0,10 12,10 15,12 18,1 21,14 24,10 40,10" />
        </svg>
        {t("app.name")}
      </a>
      <span
        class={`conn conn-${connection}`}
        data-connection={connection}
        role="status"
      >
        <i /> {t(`conn.${connection}`)}
      </span>
      <div class="langs" role="group" aria-label={t("header.language")}>
        {LANGUAGES.map((l) => (
          <button
            type="button"
            key={l.code}
            lang={l.code}
            class={`lang ${props.lang === l.code ? "active" : ""}`}
            data-lang={l.code}
            aria-pressed={props.lang === l.code}
            aria-label={l.name}
            onClick={() => props.onLang(l.code)}
          >
            {l.short}
          </button>
        ))}
      </div>
      <nav class="counts" aria-label={t("header.counts")}>
        {ORDER.map((status) => (
          <button
            type="button"
            key={status}
            class={`count count-${status} ${
              props.activeStatus === status ? "active" : ""
            }`}
            data-count={status}
            aria-pressed={props.activeStatus === status}
            aria-label={t("header.count", {
              count: counts[status],
              status: t(`count.${status}`, { count: counts[status] }),
            })}
            onClick={() =>
              props.onStatus(props.activeStatus === status ? "" : status)}
          >
            <b>{counts[status]}</b>{" "}
            <span>{t(`count.${status}`, { count: counts[status] })}</span>
          </button>
        ))}
      </nav>
      <span
        class="source"
        title={source === null ? "" : sourceText(source)}
      >
        {source === null ? "" : sourceText(source)}
        {source !== null && source.timeScale !== 1 && (
          <span
            class="speed"
            title={t("source.speed", { speed: source.timeScale })}
          >
            ×{formatNumber(source.timeScale)}
          </span>
        )}
      </span>
      <button
        type="button"
        class={`beep ${props.beep ? "on" : ""}`}
        aria-pressed={props.beep}
        data-beep={props.beep ? "on" : "off"}
        onClick={() => props.onBeep(!props.beep)}
        title={t("beep.title")}
      >
        {props.beep ? t("beep.on") : t("beep.off")}
      </button>
    </header>
  );
}
