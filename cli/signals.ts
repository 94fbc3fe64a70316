/**
 * Shutdown on the signals a process manager sends: SIGINT, SIGTERM and
 * SIGHUP (a closed terminal). Every command that runs until stopped uses this
 * one helper, so each stops the same way and says why.
 *
 * @module
 */

/** The signals that stop a long-running command. */
export const SHUTDOWN_SIGNALS: readonly Deno.Signal[] = [
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
];

/**
 * Calls `onSignal` with the signal's name when one of
 * {@linkcode SHUTDOWN_SIGNALS} arrives; the returned function removes the
 * listeners (call it once the command has stopped).
 */
export function onShutdownSignal(
  onSignal: (signal: Deno.Signal) => void,
): () => void {
  const listeners = SHUTDOWN_SIGNALS.map((s) => {
    const listener = () => onSignal(s);
    Deno.addSignalListener(s, listener);
    return [s, listener] as const;
  });
  return () => {
    for (const [s, listener] of listeners) {
      Deno.removeSignalListener(s, listener);
    }
  };
}
