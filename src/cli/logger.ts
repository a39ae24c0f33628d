import type { Logger } from "pino";

/** Never printed, whatever a log call is handed (CONFIG.md: secrets show as "(sensitive)"). */
export const REDACT = ["private_key", "*.private_key", "auth_key", "*.auth_key", "preshared_key", "*.preshared_key", "password", "*.password", "stdin"];

/** pino on stderr: readable lines on a TTY, JSON otherwise (daemons, CI). */
export async function makeLogger(level: string, json?: boolean): Promise<Logger> {
  // Imported here, not at the top: `bolt --help` and `bolt version` never log, and the bundle
  // keeps pino (and its stream helpers) out of the code every command parses at startup.
  const { default: pino } = await import("pino");
  const opts = { level, redact: { paths: REDACT, censor: "(sensitive)" }, base: { pid: process.pid } };
  if (!json && process.stderr.isTTY) {
    const { default: pretty } = await import("pino-pretty");
    return pino(opts, pretty({ destination: 2, sync: true, colorize: true, ignore: "pid,hostname" }));
  }
  return pino(opts, pino.destination({ fd: 2, sync: true }));
}
