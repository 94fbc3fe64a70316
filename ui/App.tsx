/**
 * Earthworm's single-page app: the header, the banner when the API server is
 * unreachable, and either the overview or one heart's detail view, chosen by
 * the URL hash.
 *
 * @module
 */

import { useEffect, useMemo, useState } from "preact/hooks";
import { Beeper } from "./beep.ts";
import { Detail } from "./Detail.tsx";
import { Header } from "./Header.tsx";
import { useHash, useStoreVersion } from "./hooks.ts";
import { Overview } from "./Overview.tsx";
import { countByStatus, type OverviewFilter } from "./overview_filter.ts";
import { formatRoute, parseRoute } from "./route.ts";
import { type HeartStore, staleHeart } from "./state.ts";

const beeper = new Beeper();

/** Props of {@linkcode App}. */
export interface AppProps {
  store: HeartStore;
}

/** The whole UI. */
export function App({ store }: AppProps) {
  const version = useStoreVersion(store, 250);
  const hash = useHash();
  const route = useMemo(() => parseRoute(hash), [hash]);
  const [beep, setBeep] = useState(false);

  // The server's statuses count only while its stream is heard from.
  const stale = store.staleReason();
  const counts = useMemo(
    () =>
      countByStatus(
        [...store.hearts.values()].map((e) =>
          stale === null ? e.heart : staleHeart(e.heart)
        ),
      ),
    [version, stale === null],
  );
  const filter: OverviewFilter = route.view === "overview"
    ? route.filter
    : { search: "", namespace: "", kind: "", status: "" };
  const setFilter = (f: OverviewFilter) => {
    history.replaceState(
      null,
      "",
      formatRoute({ view: "overview", filter: f }),
    );
    dispatchEvent(new HashChangeEvent("hashchange"));
  };

  useEffect(() => {
    if (!beep) return;
    const detailId = route.view === "heart"
      ? `${route.namespace}/${route.name}`
      : null;
    return store.onBeat((event, before) => {
      if (detailId !== null && event.heart.id !== detailId) return;
      // A lower tone when the beat ends a silence the API called late or expired.
      beeper.beep(before === "late" || before === "expired" ? 520 : 880);
    });
  }, [beep, store, route]);

  const toggleBeep = (on: boolean) => {
    if (on) beeper.enable();
    else beeper.disable();
    setBeep(on);
  };

  const source = store.source;
  return (
    <div class="app" data-view={route.view}>
      <Header
        source={source}
        connection={store.connection}
        counts={counts}
        activeStatus={filter.status}
        onStatus={(status) => setFilter({ ...filter, status })}
        beep={beep}
        onBeep={toggleBeep}
      />
      {stale !== null && (
        <div class="banner" role="alert" data-stream="lost">
          No word from Earthworm's server: {stale}{" "}
          — statuses unknown until it is back
        </div>
      )}
      {stale === null && source !== null && !source.connected && (
        <div
          class="banner"
          role="alert"
          data-source="disconnected"
          data-cause={source.diagnosis?.cause}
        >
          API server unreachable — hearts unknown
          {source.reason !== undefined && (
            <span class="reason">: {source.reason}</span>
          )}
          {source.diagnosis && (
            <div class="banner-cause">{source.diagnosis.summary}</div>
          )}
        </div>
      )}
      {route.view === "overview"
        ? (
          <Overview
            store={store}
            version={version}
            stale={stale}
            filter={filter}
            onFilter={setFilter}
          />
        )
        : (
          <Detail
            key={`${route.namespace}/${route.name}`}
            store={store}
            version={version}
            namespace={route.namespace}
            name={route.name}
          />
        )}
    </div>
  );
}
