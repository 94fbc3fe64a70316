/**
 * The overview: every heart at once, worst first, with filters. Only the
 * rows on screen are rendered (a virtual grid), so only visible cards own a
 * chart, and only their recent history is fetched. Cards are keyed by their
 * slot in the window, not by heart: scrolling hands a card that left the
 * screen, canvas and chart included, to a heart that came onto it, so a
 * screenful of new hearts costs new text and one draw each, not new
 * elements.
 *
 * @module
 */

import {
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
} from "preact/hooks";
import type { Heart, HeartKind, HeartStatus } from "../core/api_types.ts";
import { fetchBeats, HistoryLoader } from "./api.ts";
import { gridWindow } from "./grid_layout.ts";
import { CARD_WINDOW_MS, HeartCard } from "./HeartCard.tsx";
import {
  clustersOf,
  namespacesOf,
  type OverviewFilter,
  selectHearts,
} from "./overview_filter.ts";
import { t } from "./i18n.ts";
import { type HeartStore, staleHeart } from "./state.ts";
import { TraceLegend } from "./TraceLegend.tsx";

const CARD_MIN_WIDTH = 290;
const CARD_HEIGHT = 150;
const GAP = 10;

const loader = new HistoryLoader(4);
/** Ids of the hearts whose cards are rendered now. */
let onScreen = new Set<string>();

/** Props of {@linkcode Overview}. */
export interface OverviewProps {
  store: HeartStore;
  version: number;
  /** Why the server's statuses are not current (all read unknown), or null. */
  stale: string | null;
  filter: OverviewFilter;
  onFilter: (filter: OverviewFilter) => void;
  /** A heart whose card should take the keyboard focus once shown, or null. */
  focusId?: string | null;
  /** Called when the card of `focusId` took the focus. */
  onFocused?: () => void;
}

/** The overview of all hearts. */
export function Overview(
  { store, version, stale, filter, onFilter, focusId = null, onFocused }:
    OverviewProps,
) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const [metrics, setMetrics] = useState({
    width: 1200,
    height: 800,
    scrollTop: 0,
    /** Whether the sizes above are measured, not the first guess. */
    measured: false,
  });

  const hearts = useMemo(
    () =>
      [...store.hearts.values()].map((e) =>
        stale === null ? e.heart : staleHeart(e.heart)
      ),
    [version, stale === null],
  );
  const namespaces = useMemo(() => namespacesOf(hearts), [hearts]);
  const clusters = useMemo(() => clustersOf(hearts), [hearts]);
  const shown = useMemo(() => selectHearts(hearts, filter), [hearts, filter]);

  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (el === null) return;
    const measure = () =>
      setMetrics({
        width: el.clientWidth,
        height: el.clientHeight,
        scrollTop: el.scrollTop,
        measured: true,
      });
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    el.addEventListener("scroll", measure, { passive: true });
    return () => {
      observer.disconnect();
      el.removeEventListener("scroll", measure);
    };
  }, []);

  const win = gridWindow(shown.length, {
    width: metrics.width - 2 * GAP,
    viewportHeight: metrics.height,
    scrollTop: metrics.scrollTop,
    minCardWidth: CARD_MIN_WIDTH,
    rowHeight: CARD_HEIGHT,
    gap: GAP,
    overscan: 1,
  });
  const visible = shown.slice(win.start, win.end);
  onScreen = new Set(visible.map((h) => h.id));

  useEffect(() => {
    for (const heart of visible) loadHistory(store, heart);
  }, [visible.map((h) => h.id).join(","), store.snapshots]);

  // Hearts move between cards as statuses change (and a moved element
  // loses the keyboard focus): the heart that had the focus before this
  // render keeps it, and a card now showing another heart gives it up.
  const focusedBefore = (document.activeElement as HTMLElement | null)
    ?.closest<HTMLElement>(".card[data-heart-id]")?.dataset.heartId;
  useLayoutEffect(() => {
    if (focusedBefore === undefined) return;
    const active = document.activeElement as HTMLElement | null;
    const activeCard = active?.closest<HTMLElement>(".card[data-heart-id]");
    if (activeCard?.dataset.heartId === focusedBefore) return;
    // The focus went somewhere else on purpose (a filter, say).
    if (activeCard == null && active !== document.body) return;
    const card = scrollRef.current?.querySelector<HTMLElement>(
      `.card[data-heart-id="${CSS.escape(focusedBefore)}"]`,
    );
    if (card) card.focus({ preventScroll: true });
    else activeCard?.blur();
  });

  // Back from a detail view: its card takes the focus (scrolled to if needed).
  useEffect(() => {
    // The window of rendered cards is only right once the grid is measured.
    if (focusId === null || !metrics.measured) return;
    const index = shown.findIndex((h) => h.id === focusId);
    const el = scrollRef.current;
    if (index < 0 || el === null) {
      onFocused?.();
      return;
    }
    const card = el.querySelector<HTMLElement>(
      `.card[data-heart-id="${CSS.escape(focusId)}"]`,
    );
    if (card === null) {
      // Not rendered yet: scroll its row into the window, then try again.
      el.scrollTop = Math.floor(index / win.columns) * (CARD_HEIGHT + GAP);
      return;
    }
    // Already scrolled into the window: a scroll by the browser would move
    // the window and unmount the card again.
    card.focus({ preventScroll: true });
    onFocused?.();
  });

  const set = (patch: Partial<OverviewFilter>) =>
    onFilter({ ...filter, ...patch });

  return (
    <section class="overview">
      <div class="filters" role="search">
        <input
          type="search"
          placeholder={t("overview.search")}
          value={filter.search}
          onInput={(e) => set({ search: (e.target as HTMLInputElement).value })}
          aria-label={t("overview.searchLabel")}
        />
        {clusters.length > 1 && (
          <select
            value={filter.cluster}
            onChange={(e) =>
              set({ cluster: (e.target as HTMLSelectElement).value })}
            aria-label={t("overview.cluster")}
          >
            <option value="">{t("overview.allClusters")}</option>
            {clusters.map((c) => <option key={c} value={c}>{c}</option>)}
          </select>
        )}
        <select
          value={filter.namespace}
          onChange={(e) =>
            set({ namespace: (e.target as HTMLSelectElement).value })}
          aria-label={t("overview.namespace")}
        >
          <option value="">{t("overview.allNamespaces")}</option>
          {namespaces.map((ns) => <option key={ns} value={ns}>{ns}</option>)}
        </select>
        <select
          value={filter.kind}
          onChange={(e) =>
            set({
              kind: (e.target as HTMLSelectElement).value as HeartKind | "",
            })}
          aria-label={t("overview.kind")}
        >
          <option value="">{t("overview.allKinds")}</option>
          <option value="node">{t("overview.nodeLeases")}</option>
          <option value="lease">{t("overview.otherLeases")}</option>
        </select>
        <select
          value={filter.status}
          onChange={(e) =>
            set({
              status: (e.target as HTMLSelectElement).value as HeartStatus | "",
            })}
          aria-label={t("overview.status")}
        >
          <option value="">{t("overview.anyStatus")}</option>
          {(["expired", "late", "unknown", "healthy"] as const).map((s) => (
            <option key={s} value={s}>{t(`status.${s}`)}</option>
          ))}
        </select>
        <span class="shown" data-shown={shown.length}>
          {shown.length === hearts.length
            ? t("overview.hearts", { count: hearts.length })
            : t("overview.heartsOf", {
              shown: shown.length,
              count: hearts.length,
            })}
        </span>
      </div>
      <TraceLegend windowMs={CARD_WINDOW_MS} />
      <div class="grid-scroll" ref={scrollRef}>
        {shown.length === 0 && (
          <p class="empty">
            {hearts.length === 0
              ? t("overview.noHearts")
              : t("overview.noMatch")}
          </p>
        )}
        <div class="grid-space" style={`height:${win.totalHeight}px`}>
          <div
            class="grid"
            style={`transform:translateY(${win.offsetTop}px);` +
              `grid-template-columns:repeat(${win.columns},minmax(0,1fr));` +
              `grid-auto-rows:${CARD_HEIGHT}px;gap:${GAP}px`}
          >
            {visible.map((heart, i) => (
              <HeartCard
                key={(win.start + i) % win.capacity}
                store={store}
                heart={heart}
                stale={stale}
              />
            ))}
          </div>
        </div>
      </div>
    </section>
  );
}

function loadHistory(store: HeartStore, heart: Heart): void {
  const entry = store.hearts.get(heart.id);
  if (entry === undefined || entry.historyLoaded || heart.beats === 0) return;
  loader.request(heart.id, async () => {
    const now = store.clock.now();
    const since = now === null ? undefined : now - CARD_WINDOW_MS * 1.2;
    const res = await fetchBeats(heart.namespace, heart.name, {
      ...(since !== undefined && { since }),
      limit: 200,
      cluster: heart.cluster,
    });
    store.mergeHistory(heart.id, res.beats);
  }, () => onScreen.has(heart.id));
}
