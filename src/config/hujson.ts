import { ConfigError, errorDiag } from "../core/diagnostics.js";
import { PositionMap, pointer } from "./positions.js";

/**
 * HuJSON ("human JSON", Tailscale's policy file format): JSON with `//` and `/* *\/` comments
 * and trailing commas. Parsed by a small recursive-descent reader that keeps the line and
 * column of every key and value (for `file:line:col` errors inside the policy) and reports a
 * syntax error where it is. Objects reject duplicate keys (as Tailscale's parser does).
 */
export function parseHujson(file: string, text: string): { data: unknown; positions: PositionMap } {
  const positions = new PositionMap(file);
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const col = () => i - lineStart + 1;
  const fail = (msg: string): never => {
    throw new ConfigError([errorDiag(`HuJSON syntax error: ${msg}`, { file, line, col: col() })]);
  };
  const advance = () => {
    if (text[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
    i++;
  };
  const skip = () => {
    for (;;) {
      const c = text[i];
      if (c === " " || c === "\t" || c === "\r" || c === "\n") advance();
      else if (c === "/" && text[i + 1] === "/") while (i < text.length && text[i] !== "\n") advance();
      else if (c === "/" && text[i + 1] === "*") {
        const at = { line, col: col() };
        advance();
        advance();
        while (i < text.length && !(text[i] === "*" && text[i + 1] === "/")) advance();
        if (i >= text.length) throw new ConfigError([errorDiag("HuJSON syntax error: a /* comment is never closed", { file, ...at })]);
        advance();
        advance();
      } else return;
    }
  };
  const str = (): string => {
    const start = i;
    advance();
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\n") fail("a string runs past the end of its line");
      if (text[i] === "\\") advance();
      advance();
    }
    if (i >= text.length) fail("a string is never closed");
    advance();
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail("a string holds an invalid escape");
    }
  };
  const value = (path: (string | number)[]): unknown => {
    skip();
    positions.set(pointer(path), "value", line, col());
    const c = text[i];
    if (c === "{") {
      advance();
      const out: Record<string, unknown> = {};
      for (;;) {
        skip();
        if (text[i] === "}") {
          advance();
          return out;
        }
        if (text[i] !== '"') fail(`expected a "key" or }, found ${text[i] === undefined ? "the end of the file" : JSON.stringify(text[i])}`);
        const [kl, kc] = [line, col()];
        const key = str();
        if (Object.hasOwn(out, key))
          throw new ConfigError([errorDiag(`HuJSON syntax error: the key "${key}" appears twice in one object`, { file, line: kl, col: kc })]);
        positions.set(pointer([...path, key]), "key", kl, kc);
        skip();
        if (text[i] !== ":") fail(`expected : after "${key}"`);
        advance();
        out[key] = value([...path, key]);
        skip();
        if (text[i] === ",") advance();
        else if (text[i] !== "}") fail("expected , or } after a value");
      }
    }
    if (c === "[") {
      advance();
      const out: unknown[] = [];
      for (;;) {
        skip();
        if (text[i] === "]") {
          advance();
          return out;
        }
        out.push(value([...path, out.length]));
        skip();
        if (text[i] === ",") advance();
        else if (text[i] !== "]") fail("expected , or ] after a value");
      }
    }
    if (c === '"') return str();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 64));
    if (!m) return fail(c === undefined ? "the file ends where a value should be" : `unexpected ${JSON.stringify(c)}`);
    for (let k = 0; k < m[0].length; k++) advance();
    return JSON.parse(m[0]) as unknown;
  };
  const data = value([]);
  skip();
  if (i < text.length) fail(`unexpected ${JSON.stringify(text[i])} after the end of the policy`);
  return { data, positions };
}
