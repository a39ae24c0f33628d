// Fuzzing every user string that can reach bolt's nft script (rule, segment, network, bridge
// and endpoint names, policy strings and their targets, rule addresses, segment members,
// blocklist lines, port-forward targets, volantd bridge names and forwards) through the real
// loader (`loadIntent` on a temp file). Each attempt must end in one of two ways:
//   - a ConfigError (never another exception: a crash is a bug too), or
//   - a compiled script (compileTable + tableScript, which must not throw either: the grammar
//     checks at render time are a last line of defence, validation must catch it first) that
//     passes a structural check — every line is one of the forms tableScript writes, quoted
//     strings hold only safe characters, no `;`/`#`/`\`/control or non-ASCII character outside
//     quotes, braces balanced, exactly one line per compiled rule — and in which no user
//     string appears outside quotes (bolt's own syntax is all lowercase and every generated
//     string is biased to contain capitals, so a leak shows as a capital outside quotes).
// Seeded and reproducible: BOLT_FUZZ_SEED / BOLT_FUZZ_N override the defaults.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import { compileTable } from "../../reconcilers/nft/compile.js";
import type { NftTable } from "../../reconcilers/nft/compile.js";
import { tableScript } from "../../reconcilers/nft/script.js";
import { nftComment, nftIfname, nftName } from "../../reconcilers/nft/grammar.js";
import { kinds } from "./helpers/builders.js";

const SEED = Number(process.env.BOLT_FUZZ_SEED ?? 20261122);
const N = Number(process.env.BOLT_FUZZ_N ?? 150);
const dir = mkdtempSync(join(tmpdir(), "bolt-nft-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** mulberry32: small, seedable, good enough to pick characters. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SAFE = "abcxyzABCXYZ0189_.-";
const NASTY = [
  '"',
  "'",
  "\\",
  "{",
  "}",
  ";",
  "#",
  "\n",
  "\r",
  "\t",
  " ",
  "@",
  "$",
  "*",
  "?",
  ":",
  "/",
  ",",
  "[",
  "]",
  "(",
  ")",
  "=",
  "|",
  "&",
  "!",
  "<",
  ">",
  "`",
  "é",
  "ß",
  "🙂",
  "\u2028",
  "\u0000",
  "\u007f",
  "\u202e",
  "ℌ",
  "％",
  "Ａ",
];
const PAYLOADS = [
  'x" drop; #',
  'a" ; flush ruleset ; "',
  "a } chain x { accept",
  "a\nflush ruleset",
  "X\n}\ntable ip evil {",
  "$(reboot)",
  "@bridges",
  "{ 0.0.0.0/0 }",
  "A;B",
  "A#B",
  "Ab\\",
  "A b",
  "ACCEPT",
  "Drop",
  "x\u0000y",
  "\ufeffBOM",
  "A".repeat(33),
  "A".repeat(64),
  "B".repeat(300),
];

function gen(r: () => number, base = "", structured = false): string {
  const pick = <T>(xs: readonly T[] | string): T => xs[Math.floor(r() * xs.length)] as T;
  const safe = (n: number) => Array.from({ length: n }, () => pick<string>(SAFE)).join("");
  // Structured values (policies, addresses, ports, targets) are mostly mutated valid ones:
  // random text would almost never get past the parser to the compiler.
  const k = structured && r() < 0.6 ? 1 : r();
  let s: string;
  if (k < 0.3)
    s = `${pick<string>("ABXYZ")}${safe(Math.floor(r() * 10))}`; // mostly valid, with a capital
  else if (k < 0.55)
    s = safe(1 + Math.floor(r() * 8)) + Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(NASTY) + safe(Math.floor(r() * 3))).join("");
  else if (k < 0.7) s = Array.from({ length: Math.floor(r() * 40) }, () => (r() < 0.5 ? pick(NASTY) : pick<string>(SAFE))).join("");
  else if (k < 0.8) s = pick(PAYLOADS);
  else if (k < 0.9) s = `Q${safe(40 + Math.floor(r() * 300))}`;
  else {
    // a valid value with a few characters inserted or replaced
    const chars = [...(base || "Web-1")];
    for (let i = 0, n = 1 + Math.floor(r() * 3); i < n; i++)
      chars.splice(Math.floor(r() * (chars.length + 1)), r() < 0.5 ? 0 : 1, r() < 0.4 ? pick(NASTY) : pick<string>("ABZabz019:-./ *"));
    s = chars.join("");
  }
  return s;
}

/** A TOML basic string (JSON's escapes are TOML's, bar lone surrogates: those are TOML errors). */
const t = (s: string) => JSON.stringify(s);

const NETS = `
[networks.front]
subnet = "10.71.0.0/24"

[networks.lobby]
subnet = "10.72.0.0/24"

[[endpoints]]
name = "web"
network = "front"
ip = "10.71.0.10"
`;

interface Field {
  /** the config (and extra files) for one generated value */
  make: (v: string) => { main: string; ext?: "toml" | "yaml"; files?: Record<string, string> };
  /** a valid value to mutate */
  base: string;
  /** the value, when accepted, must only ever appear inside quotes (names; not addresses) */
  quotedOnly: boolean;
  /** mostly mutate the base value (see gen) */
  structured?: boolean;
  /** values from the field's own grammar, valid and invalid tokens mixed (a third of the cases) */
  grammar?: (r: () => number) => string;
}

const FIELDS: Record<string, Field> = {
  "rule name (comment, log prefix)": {
    base: "Allow-Web",
    quotedOnly: true,
    make: (v) => ({
      main: `${NETS}\n[[firewall.rules]]\nname = ${t(v)}\naction = "allow"\nprotocol = "tcp"\ndest_ports = 80\nlogging = true\nrate_limit = { packets_per_second = 5 }\n`,
    }),
  },
  "segment name (comment keys, rule reference)": {
    base: "Game-Seg",
    quotedOnly: true,
    make: (v) => ({
      main: `${NETS}\n[[segments]]\nname = ${t(v)}\nmembers = ["front"]\nnetwork_policies = ["deny all from external", "allow tcp:80 from lobby"]\n\n[[firewall.rules]]\nname = "r"\naction = "deny"\nsource = ${t(v)}\n`,
    }),
  },
  "network name (table key, keys, derived bridge)": {
    base: "Net-B",
    quotedOnly: true,
    make: (v) => ({
      main: `${NETS}\n[networks.${t(v)}]\nsubnet = "10.80.0.0/24"\nisolated = true\ninternet = false\n\n[[endpoints]]\nname = "ep2"\nnetwork = ${t(v)}\n\n[[firewall.rules]]\nname = "r"\naction = "deny"\ndestination = ${t(v)}\n`,
    }),
  },
  "bridge name": {
    base: "Br-X",
    quotedOnly: true,
    make: (v) => ({ main: `${NETS}\n[networks.other]\nsubnet = "10.80.0.0/24"\nbridge = ${t(v)}\n` }),
  },
  "endpoint name (port forward, rule reference)": {
    base: "Db-1",
    quotedOnly: true,
    make: (v) => ({
      main: `${NETS}\n[[endpoints]]\nname = ${t(v)}\nnetwork = "lobby"\n\n[[port_forwards]]\nhost_port = 8080\nto = ${t(`${v}:80`)}\n\n[[firewall.rules]]\nname = "r"\naction = "deny"\ndestination = ${t(v)}\n`,
    }),
  },
  "policy string": {
    structured: true,
    grammar: (r) => {
      const pick = (xs: string[]) => xs[Math.floor(r() * xs.length)]!;
      const ports = pick(["", ":80", ":1-65535", ":7777-7784", ":0", ":65536", ":9-1", ":80;", ":A"]);
      return `${pick(["allow", "deny", "reject", "Allow", "drop"])} ${pick(["tcp", "udp", "icmp", "all", "sctp"])}${ports} ${pick(["from", "to", "From"])} ${pick(["lobby", "front", "s", "external", "any", "10.0.0.0/8", "10.0.0.1/8", "Lobby", "lobby}", "0.0.0.0/0"])}${pick(["", "", " x", "  "])}`;
    },
    base: "allow tcp:80 from lobby",
    quotedOnly: false,
    make: (v) => ({ main: `${NETS}\n[[segments]]\nname = "s"\nmembers = ["front"]\nnetwork_policies = [${t(v)}]\n` }),
  },
  "policy target": {
    structured: true,
    base: "lobby",
    quotedOnly: false,
    make: (v) => ({ main: `${NETS}\n[[segments]]\nname = "s"\nmembers = ["front"]\nnetwork_policies = [${t(`allow udp:7777-7784 from ${v}`)}]\n` }),
  },
  "rule source / destination": {
    structured: true,
    base: "10.0.0.0/8",
    quotedOnly: false,
    make: (v) => ({ main: `${NETS}\n[[firewall.rules]]\nname = "r"\naction = "reject"\nprotocol = "udp"\nsource = ${t(v)}\ndestination = ${t(v)}\n` }),
  },
  "segment member glob": {
    structured: true,
    base: "fr*",
    quotedOnly: false,
    make: (v) => ({ main: `${NETS}\n[[segments]]\nname = "s"\nmembers = [${t(v)}]\nnetwork_policies = ["deny all from any"]\n` }),
  },
  "rule ports": {
    structured: true,
    base: "1000-2000",
    quotedOnly: false,
    make: (v) => ({ main: `${NETS}\n[[firewall.rules]]\nname = "r"\naction = "deny"\nprotocol = "tcp"\ndest_ports = ${t(v)}\nsource_ports = ${t(v)}\n` }),
  },
  "port forward target": {
    structured: true,
    base: "web:80",
    quotedOnly: false,
    make: (v) => ({ main: `${NETS}\n[[port_forwards]]\nhost_port = 8080\nprotocol = "udp"\nto = ${t(v)}\n` }),
  },
  "blocklist lines": {
    structured: true,
    base: "192.0.2.0/24",
    quotedOnly: false,
    make: (v) => ({
      main: `${NETS}\n[firewall.ddos]\nblocklists = ["bl.txt"]\n`,
      files: { "bl.txt": `# list\n${v}\n198.51.100.0/24\n${v} # again, with a comment\n` },
    }),
  },
  "blocklist path": {
    structured: true,
    base: "bl.txt",
    quotedOnly: false,
    make: (v) => ({ main: `${NETS}\n[firewall.ddos]\nblocklists = [${t(v)}]\n`, files: { "bl.txt": "192.0.2.0/24\n" } }),
  },
  "volantd bridge name": {
    base: "Volant0",
    quotedOnly: true,
    make: (v) => ({
      ext: "yaml",
      main: `networking:\n  mode: bridge\n  bridge:\n    name: ${t(v)}\n    subnet: 10.90.0.0/24\n  port_forwards:\n    - { host_port: 8080, to: "10.90.0.100:80" }\n`,
    }),
  },
  "volantd port forward target": {
    structured: true,
    base: "10.90.0.100:80",
    quotedOnly: false,
    make: (v) => ({
      ext: "yaml",
      main: `networking:\n  bridge:\n    name: volant0\n    subnet: 10.90.0.0/24\n  port_forwards:\n    - { host_port: 8080, to: ${t(v)}, protocol: udp }\n`,
    }),
  },
};

/** The line forms tableScript writes; anything else is an escape. */
const LINE_FORMS: RegExp[] = [
  /^table inet bolt$/,
  /^delete table inet bolt$/,
  /^table inet bolt \{$/,
  /^\}$/,
  /^\tset [a-z0-9_]+ \{$/,
  /^\t\t(type ipv4_addr|type ifname|type ifname \. ifname|flags interval|size \d+|flags dynamic,timeout|timeout 1m)$/,
  /^\t\tcomment "bolt:(d:)?[0-9a-f]{8}"$/,
  /^(\t\telements = \{ |\t\t\t)("[A-Za-z0-9_.-]{1,15}"( \. "[A-Za-z0-9_.-]{1,15}")?|\d{1,3}(\.\d{1,3}){3}(\/\d{1,2}|-\d{1,3}(\.\d{1,3}){3})?)(,| \})$/,
  /^\t\}$/,
  /^\tchain [a-z_]+ \{$/,
  /^\t\ttype (filter|nat) hook (prerouting|input|forward|output|postrouting) priority -?\d+; policy accept;$/,
];
const RULE_LINE = /^\t\t(.+) comment "bolt:([A-Za-z0-9_.:/-]+)\|[0-9a-f]{8}"$/;

function checkScript(script: string, table: NftTable, values: string[], quotedOnly: boolean): void {
  // Plain checks, one expect() only on failure: this runs for thousands of scripts.
  const fail = (why: string, line: string) => expect.fail(`${why}: ${JSON.stringify(line)}`);
  if (!script.endsWith("\n")) fail("no final newline", script);
  const lines = script.slice(0, -1).split("\n");
  let depth = 0;
  let ruleLines = 0;
  for (const line of lines) {
    for (const m of line.matchAll(/"([^"]*)"/g)) if (!/^[A-Za-z0-9_.:|/ -]*$/.test(m[1]!)) fail("unsafe quoted string", line);
    if ((line.match(/"/g) ?? []).length % 2) fail("unbalanced quote", line);
    const bare = line.replace(/"[^"]*"/g, '""');
    if (/[#\\`$]|[^\t\x20-\x7e]/.test(bare)) fail("forbidden character outside quotes", line);
    if (/[A-Z]/.test(bare)) fail("capital letter outside quotes (a user string leaked)", line);
    if (!LINE_FORMS.some((f) => f.test(line))) {
      const m = RULE_LINE.exec(line);
      if (!m) fail("not a line tableScript writes", line);
      else if (m[1]!.includes(";")) fail("a second statement inside a rule", line);
      ruleLines++;
    }
    for (const ch of bare) {
      if (ch === "{") depth++;
      if (ch === "}" && --depth < 0) fail("unbalanced brace", line);
    }
  }
  if (depth !== 0) fail("unclosed brace", script);
  const compiled = table.chains.reduce((n, c) => n + c.rules.length, 0);
  if (ruleLines !== compiled) fail(`${ruleLines} rule lines for ${compiled} compiled rules`, script);
  if (quotedOnly) {
    const bare = script.replace(/"[^"]*"/g, '""');
    for (const v of values) if (/[A-Z]/.test(v) && bare.includes(v)) fail(`${JSON.stringify(v)} outside quotes`, script);
  }
}

/** One attempt: "error" (ConfigError), or "ok" after the compiled script passed the checks. */
function attempt(field: Field, v: string): "error" | "ok" {
  const { main, ext = "toml", files = {} } = field.make(v);
  // A fresh directory each time: a blocklist path from a previous attempt must not exist.
  const sub = mkdtempSync(join(dir, "a-"));
  const path = join(sub, ext === "yaml" ? "volantd.yaml" : "bolt-network.toml");
  writeFileSync(path, main);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(sub, name), body);
  let intent: ReturnType<typeof loadIntent>["intent"];
  try {
    intent = loadIntent([path], "bolt-t-fuzz-").intent;
  } catch (e) {
    if (e instanceof ConfigError) return "error";
    throw new Error(`loadIntent threw ${(e as Error).name} (not a ConfigError) for ${JSON.stringify(v)}: ${(e as Error).stack}`);
  }
  // IPAM stand-in: pinned addresses, else .50 + index in the endpoint's network.
  const nets = new Map(kinds(intent).networks.map((n) => [n.name, n]));
  const endpointIps = new Map(kinds(intent).endpoints.map((e, i) => [e.name, e.ip ?? nets.get(e.network)!.subnet.network + 50 + i]));
  let table: NftTable | undefined;
  let script: string;
  try {
    table = compileTable({ nft: kinds(intent).nft!, networks: kinds(intent).networks, endpointIps });
    script = table ? tableScript(table) : "";
  } catch (e) {
    throw new Error(`accepted by validation but refused when compiled: ${JSON.stringify(v)}: ${(e as Error).message}`);
  }
  if (table) checkScript(script, table, [v], field.quotedOnly);
  return "ok";
}

/** attempt() in a directory that is removed right after. */
function attemptClean(field: Field, v: string): "error" | "ok" {
  try {
    return attempt(field, v);
  } finally {
    for (const d of readdirSync(dir)) rmSync(join(dir, d), { recursive: true, force: true });
  }
}

describe("nft fuzz: user strings never escape into nft syntax", () => {
  for (const [name, field] of Object.entries(FIELDS)) {
    it(
      name,
      () => {
        const r = rng(SEED + name.length * 7919 + name.charCodeAt(0));
        const outcome = { error: 0, ok: 0 };
        // The valid base value first: the harness itself must be able to say "ok".
        expect(attemptClean(field, field.base), `base value ${field.base}`).toBe("ok");
        for (let i = 0; i < N; i++) {
          const v = field.grammar && r() < 0.35 ? field.grammar(r) : gen(r, field.base, field.structured);
          try {
            outcome[attemptClean(field, v)]++;
          } catch (e) {
            throw new Error(`seed ${SEED}, field "${name}", value ${JSON.stringify(v)}: ${(e as Error).message}`);
          }
        }
        // Both outcomes must occur, or the generator is not exercising this field.
        expect(outcome.error, JSON.stringify(outcome)).toBeGreaterThan(N / 10);
        expect(outcome.ok, JSON.stringify(outcome)).toBeGreaterThan(0);
      },
      30_000 + N * 100,
    );
  }
});

describe("the script checker itself catches escapes", () => {
  const table: NftTable = {
    sets: [],
    chains: [{ name: "forward", base: { type: "filter", hook: "forward", prio: 0 }, rules: [{ key: "k", text: "accept" }] }],
  };
  const good = tableScript(table);
  it("accepts what tableScript writes", () => {
    expect(() => checkScript(good, table, ["Web"], true)).not.toThrow();
  });
  for (const [what, bad] of [
    ["a second statement", good.replace("accept comment", "accept; flush ruleset comment")],
    ["an extra line", good.replace("\t}\n}", "\t\tdrop\n\t}\n}")],
    ["an extra quoted string", good.replace('comment "bolt:k|', 'comment "x" "bolt:k|')],
    ["an unbalanced quote", good.replace('comment "bolt:k|', 'comment ""bolt:k|')],
    ["a capital outside quotes", good.replace("accept comment", "ip saddr Web accept comment")],
    ["a hash comment", good.replace("accept comment", "accept # x\n comment")],
    ["an unbalanced brace", good.replace("\t}\n}", "\t}\n}\n}")],
    ["a bad quoted string", good.replace('"bolt:k|', '"bolt;k|')],
  ] as const) {
    it(`rejects ${what}`, () => {
      expect(() => checkScript(bad, table, ["Web"], true)).toThrow();
    });
  }
});

describe("grammar.ts: the render-time guards pass only safe text", () => {
  it("nftName / nftIfname / nftComment either refuse or return a safe token", () => {
    const r = rng(SEED);
    for (let i = 0; i < 20 * N; i++) {
      const v = gen(r);
      for (const [f, safe] of [
        [nftName, /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/],
        [nftIfname, /^"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}"$/],
        [nftComment, /^"[A-Za-z0-9_.:|/ -]{1,120}"$/],
      ] as const) {
        let out: string | undefined;
        try {
          out = f(v);
        } catch (e) {
          expect((e as Error).message).toMatch(/^internal: refusing/);
          continue;
        }
        expect(out, JSON.stringify(v)).toMatch(safe);
      }
    }
  });
});
