/**
 * Diagnostics are values: every problem bolt finds carries a severity, a message and,
 * when it comes from a config file, the exact file:line:col. The CLI has the only catch.
 */
export interface SourcePos {
  file: string;
  line: number; // 1-based
  col: number; // 1-based
}

export type Severity = "error" | "warning";

export interface Diagnostic {
  severity: Severity;
  message: string;
  source?: SourcePos;
  /** JSON pointer of the config value, e.g. /networks/web/subnet */
  path?: string;
  hint?: string;
}

export function formatPos(p: SourcePos | undefined): string {
  return p ? `${p.file}:${p.line}:${p.col}` : "";
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.source ? `${formatPos(d.source)}: ` : "";
  const hint = d.hint ? ` (${d.hint})` : "";
  return `${where}${d.severity}: ${d.message}${hint}`;
}

/** Exit codes, Terraform style: 0 ok / no changes, 1 error, 2 changes present. */
export const EXIT = { OK: 0, ERROR: 1, CHANGES: 2 } as const;

export class BoltError extends Error {
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[] = [],
    readonly exitCode: number = EXIT.ERROR,
  ) {
    super(message);
    this.name = "BoltError";
  }
}

/** Config problems found before anything touched the kernel. */
export class ConfigError extends BoltError {
  constructor(diagnostics: Diagnostic[]) {
    const errs = diagnostics.filter((d) => d.severity === "error");
    super(errs.map(formatDiagnostic).join("\n"), diagnostics);
    this.name = "ConfigError";
  }
}

/** A kernel command failed; names the step and the command. */
export class CommandError extends BoltError {
  constructor(
    readonly argv: string[],
    readonly code: number,
    readonly stderr: string,
    readonly failedLine?: number,
    readonly stdin?: string,
  ) {
    const first = stderr.trim().split("\n").filter(Boolean)[0] ?? `exit code ${code}`;
    super(`command failed: ${argv.join(" ")}: ${first}`);
    this.name = "CommandError";
  }
}

export function errorDiag(message: string, source?: SourcePos, extra: Partial<Diagnostic> = {}): Diagnostic {
  return { severity: "error", message, source, ...extra };
}
export function warnDiag(message: string, source?: SourcePos, extra: Partial<Diagnostic> = {}): Diagnostic {
  return { severity: "warning", message, source, ...extra };
}

export function renderDiagnostics(diags: Diagnostic[]): string {
  return diags.map((d) => formatDiagnostic(d)).join("\n");
}
