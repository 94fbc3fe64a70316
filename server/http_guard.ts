/**
 * What every answer is protected by. On a loopback bind (`mock` and `watch`
 * on a laptop) only loopback and `localhost` Host values are served, so a web
 * page whose DNS name is rebound to 127.0.0.1 cannot read the API from the
 * browser. Every answer forbids framing and content sniffing, and its
 * Content-Security-Policy lets the UI load only from its own origin.
 *
 * @module
 */

/** Headers sent with every answer. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

/** Whether a listening address accepts connections from this machine only. */
export function isLoopbackAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) ||
    /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Whether a Host header (with or without a port) names this machine's
 * loopback: `localhost` and its subdomains (which browsers resolve to
 * loopback themselves), 127.0.0.0/8 and `[::1]`.
 */
export function isLoopbackHost(header: string): boolean {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(:\d{1,5})?$/.exec(header.trim());
  if (!m) return false;
  const name = m[1]!.toLowerCase().replace(/\.$/, "");
  return isLoopbackAddress(name) || name.endsWith(".localhost");
}
