/**
 * One animation-frame loop for every chart: each subscriber is called at
 * most at its own rate, and nothing runs while the tab is hidden.
 *
 * @module
 */

interface Subscriber {
  intervalMs: number;
  last: number;
  fn: (now: number) => void;
}

const subscribers = new Set<Subscriber>();
let frame: number | null = null;

function loop(now: number): void {
  frame = null;
  for (const s of subscribers) {
    if (now - s.last >= s.intervalMs) {
      s.last = now;
      s.fn(now);
    }
  }
  if (subscribers.size > 0) frame = requestAnimationFrame(loop);
}

/** Calls `fn` about `fps` times a second until the returned function is called. */
export function onFrame(fps: number, fn: (now: number) => void): () => void {
  const s: Subscriber = { intervalMs: 1000 / fps - 2, last: -Infinity, fn };
  subscribers.add(s);
  if (frame === null) frame = requestAnimationFrame(loop);
  return () => {
    subscribers.delete(s);
    if (subscribers.size === 0 && frame !== null) {
      cancelAnimationFrame(frame);
      frame = null;
    }
  };
}
