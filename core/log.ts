/**
 * Earthworm's one logger: JSON lines in the cluster, readable lines on a
 * terminal. Everything goes to stderr so stdout stays for command output.
 *
 * @module
 */

/** Log levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<LogLevel, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
};

interface LoggerConfig {
  level: LogLevel;
  json: boolean;
}

const config: LoggerConfig = {
  level: (Deno.env.get("EARTHWORM_LOG_LEVEL") as LogLevel | undefined) ??
    "info",
  json: Deno.env.get("EARTHWORM_LOG_FORMAT") === "json",
};

/** Sets the minimum level and the output format. */
export function configureLogger(options: Partial<LoggerConfig>): void {
  Object.assign(config, options);
}

/** A logger bound to one component name. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const encoder = new TextEncoder();

function write(
  level: LogLevel,
  component: string,
  msg: string,
  fields?: Record<string, unknown>,
) {
  if (LEVELS[level] < LEVELS[config.level]) return;
  let line: string;
  if (config.json) {
    line = JSON.stringify({
      time: new Date().toISOString(),
      level,
      component,
      msg,
      ...fields,
    });
  } else {
    const extra = fields
      ? Object.entries(fields).map(([k, v]) =>
        ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
      )
        .join("")
      : "";
    line = `${new Date().toISOString().slice(11, 23)} ${
      level.toUpperCase().padEnd(5)
    } ${component}: ${msg}${extra}`;
  }
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing sensible left to do with a log line
  }
}

/** Returns a logger for `component`. */
export function getLogger(component: string): Logger {
  return {
    debug: (m, f) => write("debug", component, m, f),
    info: (m, f) => write("info", component, m, f),
    warn: (m, f) => write("warn", component, m, f),
    error: (m, f) => write("error", component, m, f),
  };
}
