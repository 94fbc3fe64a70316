/**
 * The optional monitor beep: a short sine blip per beat through WebAudio.
 * Off by default; the audio context is created on the user's toggle.
 *
 * @module
 */

const MIN_GAP_MS = 90;

/** Plays short beeps, never more often than about ten a second. */
export class Beeper {
  #ctx: AudioContext | null = null;
  #last = 0;

  /** Creates or resumes the audio context; call from a user gesture. */
  enable(): void {
    this.#ctx ??= new AudioContext();
    void this.#ctx.resume();
  }

  /** Suspends the audio context. */
  disable(): void {
    void this.#ctx?.suspend();
  }

  /** Beeps at `frequency` Hz for about 60 ms. */
  beep(frequency = 880): void {
    const ctx = this.#ctx;
    if (ctx === null || ctx.state !== "running") return;
    const now = performance.now();
    if (now - this.#last < MIN_GAP_MS) return;
    this.#last = now;
    const t = ctx.currentTime;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.12, t + 0.005);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.06);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t);
    osc.stop(t + 0.07);
  }
}
