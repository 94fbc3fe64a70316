/**
 * Earthworm's single-page app: the header, the banner when the API server is
 * unreachable, and either the overview or one heart's detail view, chosen by
 * the URL hash.
 *
 * @module
 */

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { Beeper } from "./beep.ts";
import { Detail } from "./Detail.tsx";
import { Header } from "./Header.tsx";
import { useHash, useLang, useStoreVersion } from "./hooks.ts";
import {
  formatTagFor,
  type Lang,
  LANG_STORAGE_KEY,
  setLang,
  t,
} from "./i18n.ts";
import { Overview } from "./Overview.tsx";
import {
  countByStatus,
  NO_FILTER,
  type OverviewFilter,
} from "./overview_filter.ts";
import { heartId } from "../core/api_types.ts";
import { faviconHref, pageTitle, worstStatus } from "./page_title.ts";
import { phraseText } from "./phrases.ts";
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
  const lang = useLang();
  // The heart whose card gets the focus back after leaving its detail view.
  const [returnTo, setReturnTo] = useState<string | null>(null);

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
    : NO_FILTER;
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
      ? heartId(route.namespace, route.name, route.cluster)
      : null;
    return store.onBeat((event, before) => {
      if (detailId !== null && event.heart.id !== detailId) return;
      // A lower tone when the beat ends a silence the API called late or expired.
      beeper.beep(before === "late" || before === "expired" ? 520 : 880);
    });
  }, [beep, store, route]);

  // The tab: the heart and the worst status in the title and the favicon.
  const detailEntry = route.view === "heart"
    ? store.hearts.get(`${route.namespace}/${route.name}`)
    : undefined;
  const detailStatus = detailEntry === undefined
    ? null
    : store.shown(detailEntry.heart).status;
  const title = pageTitle(
    counts,
    route.view === "heart" && detailStatus !== null
      ? { name: route.name, status: detailStatus }
      : null,
  );
  const worst = worstStatus(counts);
  useEffect(() => {
    document.title = title;
  }, [title]);
  useEffect(() => {
    let link = document.querySelector<HTMLLinkElement>("link[rel=icon]");
    if (link === null) {
      link = document.createElement("link");
      link.rel = "icon";
      document.head.append(link);
    }
    link.type = "image/svg+xml";
    link.href = faviconHref(worst);
    link.dataset.status = worst ?? "none";
  }, [worst]);

  // Leaving a detail view (Escape, the back link, the browser's Back), the
  // focus goes back to the heart's card.
  const detailBefore = useRef<string | null>(null);
  useEffect(() => {
    const id = route.view === "heart"
      ? `${route.namespace}/${route.name}`
      : null;
    if (id === null && detailBefore.current !== null) {
      setReturnTo(detailBefore.current);
    }
    detailBefore.current = id;
  }, [route]);

  // Escape leaves the detail view.
  useEffect(() => {
    if (route.view !== "heart") return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "Escape" || e.defaultPrevented) return;
      const target = e.target as HTMLElement | null;
      if (target?.closest("input, select, textarea") != null) return;
      e.preventDefault();
      location.hash = "#/";
    };
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, [route]);

  const chooseLang = (next: Lang) => {
    try {
      localStorage.setItem(LANG_STORAGE_KEY, next);
    } catch {
      // Storage may be unavailable (private mode): the choice lasts this page.
    }
    setLang(next, formatTagFor(next, navigator.languages));
    document.documentElement.lang = next;
  };

  const toggleBeep = (on: boolean) => {
    if (on) beeper.enable();
    else beeper.disable();
    setBeep(on);
  };

  const source = store.source;
  return (
    <div
      class="app"
      data-view={route.view}
      data-lang={lang}
      data-snapshots={store.snapshots}
      data-batches={store.batches}
    >
      <Header
        source={source}
        connection={store.connection}
        counts={counts}
        activeStatus={filter.status}
        onStatus={(status) => setFilter({ ...filter, status })}
        beep={beep}
        onBeep={toggleBeep}
        lang={lang}
        onLang={chooseLang}
      />
      {stale !== null && (
        <div class="banner" role="alert" data-stream="lost">
          {t("banner.streamLost", { reason: stale })}
        </div>
      )}
      {stale === null && source !== null && !source.connected && (
        <div
          class="banner"
          role="alert"
          data-source="disconnected"
          data-cause={source.diagnosis?.cause}
        >
          {t(source.clusters ? "banner.clusterApiDown" : "banner.apiDown")}
          {source.reason !== undefined && (
            <span class="reason">: {source.reason}</span>
          )}
          {source.diagnosis && (
            <div class="banner-cause">
              {phraseText(
                source.diagnosis.summaryPhrase,
                source.diagnosis.summary,
              )}
            </div>
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
            focusId={returnTo}
            onFocused={() => setReturnTo(null)}
          />
        )
        : (
          <Detail
            key={heartId(route.namespace, route.name, route.cluster)}
            store={store}
            version={version}
            namespace={route.namespace}
            name={route.name}
            cluster={route.cluster}
          />
        )}
    </div>
  );
}
