/**
 * Preact hooks over the store.
 *
 * @module
 */

import { useEffect, useState } from "preact/hooks";
import { type Lang, lang, onLangChange } from "./i18n.ts";
import type { HeartStore } from "./state.ts";

/**
 * Re-renders the calling component when the store changes, at most every
 * `throttleMs`: thousands of beats a second must not mean thousands of renders.
 */
export function useStoreVersion(store: HeartStore, throttleMs: number): number {
  const [version, setVersion] = useState(store.version);
  useEffect(() => {
    let timer: number | undefined;
    let last = 0;
    const flush = () => {
      timer = undefined;
      last = performance.now();
      setVersion(store.version);
    };
    const off = store.subscribe(() => {
      if (timer !== undefined) return;
      const wait = Math.max(0, last + throttleMs - performance.now());
      timer = setTimeout(flush, wait);
    });
    flush();
    return () => {
      off();
      clearTimeout(timer);
    };
  }, [store, throttleMs]);
  return version;
}

/** The current location hash, updated on `hashchange`. */
export function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return hash;
}

/** The UI's language; the component re-renders when it changes. */
export function useLang(): Lang {
  const [current, setCurrent] = useState(lang());
  useEffect(() => onLangChange(setCurrent), []);
  return current;
}

/** A number that changes every `ms` milliseconds, to re-render a ticking text. */
export function useTick(ms: number): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return tick;
}
