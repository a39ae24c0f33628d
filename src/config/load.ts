import { readFileSync, statSync } from "node:fs";
import { basename } from "node:path";
import { parseTOML, getStaticTOMLValue } from "toml-eslint-parser";
import { parse as smolParse } from "smol-toml";
import type { AST } from "toml-eslint-parser";
import { createRequire } from "node:module";
import type { Node as YamlNode } from "yaml";

import { ConfigError, errorDiag } from "../core/diagnostics.js";
import { PositionMap, pointer } from "./positions.js";

export type FileKind = "boltfile" | "mesh" | "volantd";

export interface LoadedFile {
  path: string; // as given on the command line (what diagnostics print)
  kind: FileKind;
  data: Record<string, unknown>;
  positions: PositionMap;
}

/** Config files over this size are refused before parsing (a runaway generator, not a config). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const BOLTFILE_KEYS = [
  "networking",
  "networks",
  "endpoints",
  "port_forwards",
  "firewall",
  "segments",
  "wireguard",
  "routing",
  "sysctl",
  "load_balancers",
  "traffic",
  "ebpf",
  "vpn",
];

/** CONFIG.md: *.yaml → volantd; *.toml with [ghostwire]/[meshvpn]/[node] and no Boltfile table → mesh. */
export function detectKind(path: string, data: Record<string, unknown>): FileKind {
  if (/\.ya?ml$/i.test(path)) return "volantd";
  const hasBolt = BOLTFILE_KEYS.some((k) => k in data);
  if (!hasBolt && ("ghostwire" in data || "meshvpn" in data || "node" in data || /ghostwire/i.test(basename(path)))) return "mesh";
  return "boltfile";
}

export function readConfigText(path: string): string {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    throw new ConfigError([
      errorDiag(`cannot read config file: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`, {
        file: path,
        line: 1,
        col: 1,
      }),
    ]);
  }
  if (st.isDirectory()) throw new ConfigError([errorDiag("is a directory, not a config file", { file: path, line: 1, col: 1 })]);
  // /dev/zero reads until memory runs out, a FIFO blocks until someone writes: only regular files.
  if (!st.isFile())
    throw new ConfigError([
      errorDiag(
        `is not a regular file (${st.isFIFO() ? "a FIFO or pipe" : st.isCharacterDevice() ? "a character device" : st.isBlockDevice() ? "a block device" : st.isSocket() ? "a socket" : "not a file"}): bolt reads config files only`,
        { file: path, line: 1, col: 1 },
        { hint: "write the config to a file first" },
      ),
    ]);
  if (st.size > MAX_CONFIG_BYTES)
    throw new ConfigError([errorDiag(`config file is ${st.size} bytes; the limit is ${MAX_CONFIG_BYTES}`, { file: path, line: 1, col: 1 })]);
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError([errorDiag(`cannot read config file: ${(e as Error).message}`, { file: path, line: 1, col: 1 })]);
  }
}

export function loadFile(path: string, text = readConfigText(path)): LoadedFile {
  const isYaml = /\.ya?ml$/i.test(path);
  const { data, positions } = isYaml ? parseYaml(path, text) : parseToml(path, text);
  return { path, kind: detectKind(path, data), data, positions };
}

/**
 * Values from smol-toml (TOML 1.0; measured 1.7× faster than @iarna/toml cold and 6× faster
 * than toml-eslint-parser on a 1000-network file); positions from toml-eslint-parser's AST,
 * built only when a position is read. On a syntax error toml-eslint-parser parses again to
 * report the exact line and column.
 */
function parseToml(path: string, text: string): { data: Record<string, unknown>; positions: PositionMap } {
  try {
    const data = smolParse(text) as Record<string, unknown>;
    return { data, positions: new PositionMap(path, (m) => tomlPositions(parseTOML(text), m)) };
  } catch {
    /* fall through: the position-keeping parser decides, and reports errors with positions */
  }
  let ast: AST.TOMLProgram;
  try {
    ast = parseTOML(text);
  } catch (e) {
    const err = e as Error & { lineNumber?: number; column?: number };
    throw new ConfigError([errorDiag(`TOML syntax error: ${err.message}`, { file: path, line: err.lineNumber ?? 1, col: (err.column ?? 0) + 1 })]);
  }
  const positions = new PositionMap(path);
  tomlPositions(ast, positions);
  return { data: getStaticTOMLValue(ast) as Record<string, unknown>, positions };
}

function tomlPositions(ast: AST.TOMLProgram, positions: PositionMap): void {
  const at = (n: { loc: AST.SourceLocation }) => [n.loc.start.line, n.loc.start.column + 1] as const;
  const walkValue = (base: (string | number)[], node: AST.TOMLContentNode) => {
    positions.set(pointer(base), "value", ...at(node));
    if (node.type === "TOMLInlineTable") for (const kv of node.body) walkKv(base, kv);
    else if (node.type === "TOMLArray") node.elements.forEach((el, i) => walkValue([...base, i], el));
  };
  const walkKv = (base: (string | number)[], kv: AST.TOMLKeyValue) => {
    const keys = kv.key.keys.map((k) => (k.type === "TOMLBare" ? k.name : k.value));
    keys.forEach((_, i) => positions.set(pointer([...base, ...keys.slice(0, i + 1)]), "key", ...at(kv.key.keys[i]!)));
    walkValue([...base, ...keys], kv.value);
  };
  const top = ast.body[0];
  for (const item of top.body) {
    if (item.type === "TOMLKeyValue") walkKv([], item);
    else {
      const rk = item.resolvedKey as (string | number)[];
      for (let i = 1; i <= rk.length; i++) positions.set(pointer(rk.slice(0, i)), "key", ...at(item));
      for (const kv of item.body) walkKv(rk, kv);
    }
  }
}

function parseYaml(path: string, text: string): { data: Record<string, unknown>; positions: PositionMap } {
  // yaml is loaded only for YAML files (volantd.yaml): most runs read TOML only.
  const { LineCounter, parseDocument, isMap, isSeq, isScalar, isPair } = createRequire(import.meta.url)("yaml") as typeof import("yaml");
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  // A tag the schema does not know (`!custom`, `!!binary`) would turn into a silent string or a
  // Buffer: refused where it stands, like any other error.
  const unresolved = doc.warnings.find((w) => /tag/i.test(w.message));
  const err = doc.errors[0] ?? unresolved;
  if (err) {
    // linePos is only filled in with prettyErrors; map the offset through our LineCounter.
    const lp = err.linePos?.[0] ?? lc.linePos(err.pos[0]);
    throw new ConfigError([errorDiag(`YAML syntax error: ${err.message.split("\n")[0]}`, { file: path, line: lp?.line ?? 1, col: lp?.col ?? 1 })]);
  }
  const positions = new PositionMap(path);
  const at = (n: YamlNode | null | undefined): [number, number] | undefined => {
    const off = n?.range?.[0];
    if (off === undefined) return undefined;
    const p = lc.linePos(off);
    return [p.line, p.col];
  };
  const walk = (base: (string | number)[], node: unknown) => {
    if (isMap(node)) {
      for (const item of node.items) {
        if (!isPair(item)) continue;
        const k = isScalar(item.key) ? String(item.key.value) : String(item.key);
        const kp = at(item.key as YamlNode);
        if (kp) positions.set(pointer([...base, k]), "key", ...kp);
        const vp = at(item.value as YamlNode);
        if (vp) positions.set(pointer([...base, k]), "value", ...vp);
        walk([...base, k], item.value);
      }
    } else if (isSeq(node)) {
      node.items.forEach((el, i) => {
        const vp = at(el as YamlNode);
        if (vp) positions.set(pointer([...base, i]), "value", ...vp);
        walk([...base, i], el);
      });
    }
  };
  walk([], doc.contents);
  let data: unknown;
  try {
    // yaml refuses aliases that expand past its limit (a "billion laughs" file): a config error.
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    throw new ConfigError([errorDiag(`YAML aliases expand too far (${(e as Error).message}): bolt refuses the file`, { file: path, line: 1, col: 1 })]);
  }
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError([errorDiag("a volantd config must be a YAML mapping at the top level", { file: path, line: 1, col: 1 })]);
  }
  return { data: data as Record<string, unknown>, positions };
}
