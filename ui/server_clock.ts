/**
 * The UI's estimate of the server's clock. Beats carry the server's
 * `observedAt`, so the sweeping time axis must run on server time, at the
 * server's rate (`SourceState.timeScale`: N under `mock --speed N`).
 *
 * @module
 */

/** Estimates server time from the local clock, anchored at server timestamps. */
export class ServerClock {
  #localNow: () => number;
  #anchorServer: number | null = null;
  #anchorLocal = 0;
  #scale = 1;

  /** `localNow` returns local milliseconds (performance.now or Date.now). */
  constructor(localNow: () => number) {
    this.#localNow = localNow;
  }

  /** Re-anchors at a server time known to be "now" (a snapshot's `generatedAt`). */
  reset(serverMs: number, scale: number): void {
    this.#scale = Number.isFinite(scale) && scale > 0 ? scale : 1;
    this.#anchorServer = serverMs;
    this.#anchorLocal = this.#localNow();
  }

  /** Changes the rate without moving the current estimate. */
  setScale(scale: number): void {
    if (!Number.isFinite(scale) || scale <= 0 || scale === this.#scale) return;
    const now = this.now();
    this.#scale = scale;
    if (now !== null) this.reset(now, scale);
  }

  /**
   * Notes a server timestamp of an event that just arrived: the server's
   * clock is at least that far, so an estimate behind it moves forward.
   */
  observe(serverMs: number): void {
    const now = this.now();
    if (now === null || serverMs > now) this.reset(serverMs, this.#scale);
  }

  /** Local time in the clock's local milliseconds. */
  local(): number {
    return this.#localNow();
  }

  /** Rate of the server clock against the local one. */
  get scale(): number {
    return this.#scale;
  }

  /** Current server time in milliseconds, or null before the first anchor. */
  now(): number | null {
    if (this.#anchorServer === null) return null;
    return this.#anchorServer +
      (this.#localNow() - this.#anchorLocal) * this.#scale;
  }
}
