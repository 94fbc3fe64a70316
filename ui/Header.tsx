/**
 * The top bar: the source, counts of hearts by status (click to filter), the
 * connection state and the beep toggle.
 *
 * @module
 */

import type { HeartStatus, SourceState } from "../core/api_types.ts";
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
}

const CONNECTION_LABELS: Readonly<Record<ConnectionState, string>> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  offline: "offline — retrying",
};

const ORDER: readonly HeartStatus[] = ["expired", "late", "unknown", "healthy"];

/** Earthworm's top bar. */
export function Header(props: HeaderProps) {
  const { source, connection, counts } = props;
  return (
    <header class="top">
      <a class="brand" href="#/">
        <svg viewBox="0 0 40 16" width="40" height="16" aria-hidden="true">
          <polyline points="0,10 12,10 15,12 18,1 21,14 24,10 40,10" />
        </svg>
        Earthworm
      </a>
      <span class="source" title={source?.name ?? ""}>
        {source === null ? "" : `${source.kind} · ${source.name}`}
        {source !== null && source.timeScale !== 1 && (
          <span class="speed">×{source.timeScale}</span>
        )}
      </span>
      <nav class="counts" aria-label="Hearts by status">
        {ORDER.map((status) => (
          <button
            type="button"
            key={status}
            class={`count count-${status} ${
              props.activeStatus === status ? "active" : ""
            }`}
            data-count={status}
            aria-pressed={props.activeStatus === status}
            onClick={() =>
              props.onStatus(props.activeStatus === status ? "" : status)}
          >
            <b>{counts[status]}</b> {status}
          </button>
        ))}
      </nav>
      <button
        type="button"
        class={`beep ${props.beep ? "on" : ""}`}
        aria-pressed={props.beep}
        data-beep={props.beep ? "on" : "off"}
        onClick={() => props.onBeep(!props.beep)}
        title="Beep on every beat"
      >
        {props.beep ? "♪ beep on" : "♪ beep off"}
      </button>
      <span
        class={`conn conn-${connection}`}
        data-connection={connection}
        role="status"
      >
        <i /> {CONNECTION_LABELS[connection]}
      </span>
    </header>
  );
}
