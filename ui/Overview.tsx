/**
 * The overview: every heart at once, worst first, with filters. Only the
 * rows on screen are rendered (a virtual grid), so only visible cards own a
 * chart, and only their recent history is fetched.
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
  namespacesOf,
  type OverviewFilter,
  selectHearts,
} from "./overview_filter.ts";
import { type HeartStore, staleHeart } from "./state.ts";

const CARD_MIN_WIDTH = 290;
const CARD_HEIGHT = 150;
const GAP = 10;

const loader = new HistoryLoader(4);

/** Props of {@linkcode Overview}. */
export interface OverviewProps {
  store: HeartStore;
  version: number;
  /** Why the server's statuses are not current (all read unknown), or null. */
  stale: string | null;
  filter: OverviewFilter;
  onFilter: (filter: OverviewFilter) => void;
}

/** The overview of all hearts. */
export function Overview(
  { store, version, stale, filter, onFilter }: OverviewProps,
) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const [metrics, setMetrics] = useState({
    width: 1200,
    height: 800,
    scrollTop: 0,
  });

  const hearts = useMemo(
    () =>
      [...store.hearts.values()].map((e) =>
        stale === null ? e.heart : staleHeart(e.heart)
      ),
    [version, stale === null],
  );
  const namespaces = useMemo(() => namespacesOf(hearts), [hearts]);
  const shown = useMemo(() => selectHearts(hearts, filter), [hearts, filter]);

  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (el === null) return;
    const measure = () =>
      setMetrics({
        width: el.clientWidth,
        height: el.clientHeight,
        scrollTop: el.scrollTop,
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

  useEffect(() => {
    for (const heart of visible) loadHistory(store, heart);
  }, [visible.map((h) => h.id).join(","), store.snapshots]);

  const set = (patch: Partial<OverviewFilter>) =>
    onFilter({ ...filter, ...patch });

  return (
    <section class="overview">
      <div class="filters" role="search">
        <input
          type="search"
          placeholder="Search name, namespace or holder"
          value={filter.search}
          onInput={(e) => set({ search: (e.target as HTMLInputElement).value })}
          aria-label="Search hearts"
        />
        <select
          value={filter.namespace}
          onChange={(e) =>
            set({ namespace: (e.target as HTMLSelectElement).value })}
          aria-label="Namespace"
        >
          <option value="">all namespaces</option>
          {namespaces.map((ns) => <option key={ns} value={ns}>{ns}</option>)}
        </select>
        <select
          value={filter.kind}
          onChange={(e) =>
            set({
              kind: (e.target as HTMLSelectElement).value as HeartKind | "",
            })}
          aria-label="Kind"
        >
          <option value="">all kinds</option>
          <option value="node">node leases</option>
          <option value="lease">other leases</option>
        </select>
        <select
          value={filter.status}
          onChange={(e) =>
            set({
              status: (e.target as HTMLSelectElement).value as HeartStatus | "",
            })}
          aria-label="Status"
        >
          <option value="">any status</option>
          <option value="expired">expired</option>
          <option value="late">late</option>
          <option value="unknown">unknown</option>
          <option value="healthy">healthy</option>
        </select>
        <span class="shown" data-shown={shown.length}>
          {shown.length === hearts.length
            ? `${hearts.length} hearts`
            : `${shown.length} of ${hearts.length} hearts`}
        </span>
      </div>
      <div class="grid-scroll" ref={scrollRef}>
        {shown.length === 0 && (
          <p class="empty">
            {hearts.length === 0
              ? "No hearts yet: waiting for the first snapshot."
              : "No heart matches this filter."}
          </p>
        )}
        <div class="grid-space" style={`height:${win.totalHeight}px`}>
          <div
            class="grid"
            style={`transform:translateY(${win.offsetTop}px);` +
              `grid-template-columns:repeat(${win.columns},minmax(0,1fr));` +
              `grid-auto-rows:${CARD_HEIGHT}px;gap:${GAP}px`}
          >
            {visible.map((heart) => (
              <HeartCard
                key={heart.id}
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
    });
    store.mergeHistory(heart.id, res.beats);
  });
}
