// Bad nftables input (issue 3): unknown protocols, ports out of range, reversed ranges,
// references to undefined networks/segments/endpoints, policy strings that do not parse, and
// injection attempts in every name that can reach an nft script — each a ConfigError whose
// first error is at the exact file:line:col (for a policy: the column inside the string).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";

const dir = mkdtempSync(join(tmpdir(), "bolt-nft-bad-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NETS = `[networks.front]
subnet = "10.71.0.0/24"

[networks.lobby]
subnet = "10.72.0.0/24"

[[endpoints]]
name = "web"
network = "front"

[[segments]]
name = "game-segment"
members = ["front"]
`;

/** 1-based line and column of the first occurrence of `needle` in `text` (after `after`, when given). */
function posOf(text: string, needle: string, after = ""): { line: number; col: number } {
  const i = text.indexOf(needle, after ? text.indexOf(after) : 0);
  if (i < 0) throw new Error(`${needle} not in config`);
  const lines = text.slice(0, i).split("\n");
  return { line: lines.length, col: lines[lines.length - 1]!.length + 1 };
}

let n = 0;
function firstError(text: string, ext = "toml", extraFiles: Record<string, string> = {}): { file: string; first: Diagnostic; errors: Diagnostic[] } {
  const file = join(dir, `c${n++}.${ext}`);
  writeFileSync(file, text);
  for (const [name, body] of Object.entries(extraFiles)) writeFileSync(join(dir, name), body);
  let err: unknown;
  try {
    loadIntent([file], "");
  } catch (e) {
    err = e;
  }
  expect(err, "the config must be refused").toBeInstanceOf(ConfigError);
  const errors = (err as ConfigError).diagnostics.filter((d) => d.severity === "error");
  return { file, first: errors[0]!, errors };
}

interface Case {
  /** appended to NETS */
  toml: string;
  /** where the error must point: the first occurrence of this text in the whole config */
  at: string;
  /** search for `at` only after this text */
  after?: string;
  message: RegExp;
  hint?: RegExp;
}

const rule = (body: string) => `\n[[firewall.rules]]\nname = "r1"\naction = "deny"\n${body}\n`;
const policies = (...p: string[]) => `\n[[segments]]\nname = "seg2"\nmembers = ["lobby"]\nnetwork_policies = [\n${p.map((x) => `  "${x}",`).join("\n")}\n]\n`;

const cases: Record<string, Case> = {
  "unknown protocol in a rule": { toml: rule('protocol = "sctp"'), at: '"sctp"', message: /protocol.*must be equal to one of the allowed values|"sctp"/ },
  "unknown protocol in a port forward": {
    toml: '\n[[port_forwards]]\nhost_port = 8080\nprotocol = "icmp"\nto = "web:80"\n',
    at: '"icmp"',
    message: /protocol/,
  },
  "dest port 0 (string)": { toml: rule('protocol = "tcp"\ndest_ports = "0"'), at: '"0"', message: /dest_ports "0" is not a port 1-65535/ },
  "dest port 0 (integer)": { toml: rule('protocol = "tcp"\ndest_ports = 0'), at: "0\n", after: "dest_ports", message: /dest_ports.*(>= 1|minimum)/ },
  "source port 65536 (string)": {
    toml: rule('protocol = "udp"\nsource_ports = "65536"'),
    at: '"65536"',
    message: /source_ports "65536" is not a port 1-65535/,
  },
  "dest port 70000 (integer)": { toml: rule('protocol = "tcp"\ndest_ports = 70000'), at: "70000", message: /dest_ports.*(<= 65535|maximum)/ },
  "reversed port range": {
    toml: rule('protocol = "tcp"\ndest_ports = "90-80"'),
    at: '"90-80"',
    message: /"90-80" is not a port 1-65535 or a range N-M with N <= M/,
  },
  "range end over 65535": { toml: rule('protocol = "tcp"\ndest_ports = "1000-70000"'), at: '"1000-70000"', message: /"1000-70000"/ },
  "ports without tcp/udp": {
    toml: rule('protocol = "icmp"\ndest_ports = 80'),
    at: "80",
    after: "dest_ports",
    message: /dest_ports needs protocol tcp or udp \(protocol is icmp\)/,
  },
  "port forward host_port 0": { toml: '\n[[port_forwards]]\nhost_port = 0\nto = "web:80"\n', at: "0\n", after: "host_port", message: /host_port/ },
  "port forward target port 0": {
    toml: '\n[[port_forwards]]\nhost_port = 8080\nto = "web:0"\n',
    at: '"web:0"',
    message: /"to" must be "<endpoint>:<port>", "<ipv4>:<port>" or "\[<ipv6>\]:<port>" with a port 1-65535, got "web:0"/,
  },
  "port forward target port 65536": { toml: '\n[[port_forwards]]\nhost_port = 8080\nto = "web:65536"\n', at: '"web:65536"', message: /got "web:65536"/ },
  "port forward to an unknown endpoint": {
    toml: '\n[[port_forwards]]\nhost_port = 8080\nto = "wbe:80"\n',
    at: '"wbe:80"',
    message: /"wbe" is neither an IP address nor a defined endpoint/,
    hint: /did you mean "web"\?/,
  },
  "port forwarded twice": {
    toml: '\n[[port_forwards]]\nhost_port = 8080\nto = "web:80"\n\n[[port_forwards]]\nhost_port = 8080\nto = "web:81"\n',
    at: "[[port_forwards]]",
    after: '"web:80"',
    message: /tcp port 8080 is already forwarded/,
  },
  "rule naming an unknown network": {
    toml: rule('source = "frnt"'),
    at: '"frnt"',
    message: /source "frnt" is not a CIDR, network, segment or endpoint \(did you mean "front"\?\)/,
  },
  "rule naming an unknown segment": {
    toml: rule('destination = "game-segmnt"'),
    at: '"game-segmnt"',
    message: /destination "game-segmnt" is not a CIDR, network, segment or endpoint \(did you mean "game-segment"\?\)/,
  },
  "rule with a CIDR with host bits": { toml: rule('source = "10.0.0.1/8"'), at: '"10.0.0.1/8"', message: /"10\.0\.0\.1\/8" has host bits set/ },
  "rule with a bad address": { toml: rule('source = "10.0.0.256"'), at: '"10.0.0.256"', message: /"10\.0\.0\.256" is not an IPv4 address or CIDR/ },
  "duplicate rule names": {
    toml: rule('protocol = "tcp"') + rule('protocol = "udp"'),
    at: "[[firewall.rules]]",
    after: 'protocol = "tcp"',
    message: /firewall rule "r1" is defined twice/,
  },
  "rate limit of 0 packets per second": { toml: rule("rate_limit = { packets_per_second = 0 }"), at: "0 }", message: /packets_per_second/ },
  // Policy strings: the column points at the offending token inside the string.
  "policy: unknown action": {
    toml: policies("permit tcp:80 from lobby"),
    at: "permit",
    message: /policy "permit tcp:80 from lobby": expected allow, deny or reject, found "permit"/,
  },
  "policy: unknown protocol": {
    toml: policies("allow sctp:80 from lobby"),
    at: "sctp",
    message: /expected a protocol \(tcp, udp, icmp, all\), found "sctp:80"/,
  },
  "policy: port 0": { toml: policies("allow tcp:0 from lobby"), at: "0 from", message: /expected a port or a range N-M \(1-65535\), found "0"/ },
  "policy: reversed range": { toml: policies("allow udp:7784-7777 from lobby"), at: "7784-7777", message: /found "7784-7777"/ },
  "policy: port over 65535": { toml: policies("allow udp:65536 from lobby"), at: "65536", message: /found "65536"/ },
  "policy: ports on icmp": { toml: policies("allow icmp:8 from lobby"), at: "8 from", message: /ports need tcp or udp, not icmp/ },
  "policy: misspelt direction": { toml: policies("allow tcp:80 form lobby"), at: "form", message: /expected "from" or "to", found "form"/ },
  "policy: missing target": { toml: policies("deny all from"), at: '",', after: "deny all from", message: /expected a target .* after "from"/ },
  "policy: trailing words": { toml: policies("deny all from external now"), at: "now", message: /unexpected "now" after the target/ },
  "policy: unknown target": {
    toml: policies("allow tcp:80 from lobyy"),
    at: "lobyy",
    message: /target "lobyy" is not a CIDR, network, segment or endpoint \(did you mean "lobby"\?\)/,
  },
  "policy: second policy of a list": {
    toml: policies("allow tcp:80 from lobby", "deny all from extrenal"),
    at: "extrenal",
    message: /policy "deny all from extrenal": target "extrenal"/,
  },
  "policy: a glob is not a target": { toml: policies("allow tcp:80 from lob*"), at: "lob*", message: /"lob\*" is not a name or CIDR/ },
  // Injection attempts: nothing with a quote, brace, semicolon, newline or space gets through.
  'rule name with a quote: x" drop; #': {
    toml: rule("").replace('name = "r1"', 'name = "x\\" drop; #"'),
    at: '"x\\"',
    message: /\/firewall\/rules\/0\/name: ".*" is not valid: A logical name/s,
  },
  "rule name with a brace": {
    toml: rule("").replace('name = "r1"', 'name = "r1 } chain x {"'),
    at: '"r1 }',
    message: /\/firewall\/rules\/0\/name: ".*" is not valid: A logical name/s,
  },
  "rule name with a semicolon": {
    toml: rule("").replace('name = "r1"', 'name = "r1;flush ruleset"'),
    at: '"r1;',
    message: /\/firewall\/rules\/0\/name: ".*" is not valid: A logical name/s,
  },
  "rule name with a newline": {
    toml: rule("").replace('name = "r1"', 'name = "r1\\nflush ruleset"'),
    at: '"r1\\n',
    message: /\/firewall\/rules\/0\/name: ".*" is not valid: A logical name/s,
  },
  "rule name with a multi-line string": {
    toml: rule("").replace('name = "r1"', 'name = """\nr1\n"""'),
    at: '"""',
    message: /\/firewall\/rules\/0\/name: ".*" is not valid: A logical name/s,
  },
  "rule name with a hash": {
    toml: rule("").replace('name = "r1"', 'name = "r1#x"'),
    at: '"r1#x"',
    message: /\/firewall\/rules\/0\/name: ".*" is not valid: A logical name/s,
  },
  "segment name with a quote": {
    toml: '\n[[segments]]\nname = "s\\" accept"\n',
    at: '"s\\"',
    message: /\/segments\/1\/name: ".*" is not valid: A logical name/,
  },
  "segment name with braces": { toml: '\n[[segments]]\nname = "{s}"\n', at: '"{s}"', message: /\/segments\/1\/name: ".*" is not valid: A logical name/ },
  // A key that is a table header is reported at its header (the convention of config-errors.test.ts).
  "network key with a semicolon": {
    toml: '\n[networks."n;drop"]\nsubnet = "10.73.0.0/24"\n',
    at: '[networks."n;drop"]',
    message: /\/networks: "n;drop" is not valid/,
  },
  "network key with a quote": {
    toml: '\n[networks."n\\"x"]\nsubnet = "10.73.0.0/24"\n',
    at: '[networks."n\\"x"]',
    message: /\/networks: "n\\"x" is not valid/,
  },
  "bridge name with a quote": {
    toml: '\n[networks.other]\nsubnet = "10.73.0.0/24"\nbridge = "br\\"x"\n',
    at: '"br\\"x"',
    message: /is not valid: A kernel interface name/,
  },
  "bridge name with a brace": {
    toml: '\n[networks.other]\nsubnet = "10.73.0.0/24"\nbridge = "br{x"\n',
    at: '"br{x"',
    message: /is not valid: A kernel interface name/,
  },
  "port forward target with a quote": {
    toml: '\n[[port_forwards]]\nhost_port = 8080\nto = "web\\";drop:80"\n',
    at: '"web',
    after: "host_port",
    message: /\/port_forwards\/0\/to: ".*" is not valid/,
  },
  "segment member with a semicolon": {
    toml: '\n[[segments]]\nname = "s3"\nmembers = ["fr;ont"]\n',
    at: '"fr;ont"',
    message: /\/segments\/1\/members\/0: "fr;ont" is not valid/,
  },
  "rule source with a brace": {
    toml: rule('source = "{ 0.0.0.0/0 }"'),
    at: '"{ 0',
    message: /\/firewall\/rules\/0\/source: "\{ 0\.0\.0\.0\/0 \}" is not valid/,
  },
  // Hardening: a typo in a segment member made its policies and the rules naming it vanish.
  "segment member that names nothing (typo)": {
    toml: '\n[[segments]]\nname = "s5"\nmembers = ["lobyy"]\nnetwork_policies = ["deny all from external"]\n',
    at: '"lobyy"',
    message: /segment "s5": member "lobyy" matches no network or endpoint/,
    hint: /did you mean "lobby"/,
  },
  "segment whose globs match nothing": {
    toml: '\n[[segments]]\nname = "s6"\nmembers = ["game-*"]\n',
    at: "[[segments]]",
    after: 'members = ["front"]',
    message: /segment "s6" matches no network or endpoint/,
  },
  "segment with no members": {
    toml: '\n[[segments]]\nname = "s7"\nnetwork_policies = ["deny all from external"]\n',
    at: "[[segments]]",
    after: 'members = ["front"]',
    message: /segment "s7" matches no network or endpoint/,
  },
  "policy with a quote or semicolon": {
    toml: '\n[[segments]]\nname = "s4"\nnetwork_policies = ["allow all from lobby; flush ruleset"]\n',
    at: '"allow all',
    message: /\/segments\/1\/network_policies\/0: ".*" is not valid/,
  },
};

describe("nft config errors: file:line:col", () => {
  for (const [title, c] of Object.entries(cases)) {
    it(title, () => {
      const text = NETS + c.toml;
      const { file, first, errors } = firstError(text);
      const want = posOf(text, c.at, c.after);
      expect(errors.map((e) => e.message).join("\n")).toMatch(c.message);
      const hit = errors.find((e) => c.message.test(e.message))!;
      expect(hit.source, `${hit.message} has no position`).toBeDefined();
      expect({ file: hit.source!.file, line: hit.source!.line, col: hit.source!.col }).toEqual({ file, ...want });
      if (c.hint) expect(hit.hint ?? hit.message).toMatch(c.hint);
      expect(first).toBeDefined();
    });
  }
});

describe("nft config errors: blocklists and ip_forward", () => {
  const ddos = (path: string) => `\n[firewall.ddos]\nblocklists = ["${path}"]\n`;

  it("a blocklist line that is no address points at the list file's own line and column", () => {
    const { errors } = firstError(NETS + ddos("bl1.txt"), "toml", { "bl1.txt": "# list\n192.0.2.0/24\n  1.2.3.4; drop\n10.0.0.0/8\n" });
    expect(errors[0]!.message).toBe('"1.2.3.4; drop" is not an IPv4 address or CIDR');
    expect(errors[0]!.source).toEqual({ file: "bl1.txt", line: 3, col: 3 });
  });

  it("a blocklist CIDR with host bits", () => {
    const { errors } = firstError(NETS + ddos("bl2.txt"), "toml", { "bl2.txt": "192.0.2.1/24 # no\n" });
    expect(errors[0]!.message).toMatch(/"192\.0\.2\.1\/24" is not an IPv4 address or CIDR \(host bits set\)/);
    expect(errors[0]!.source).toEqual({ file: "bl2.txt", line: 1, col: 1 });
  });

  it("a missing blocklist file points at its entry in the config", () => {
    const text = NETS + ddos("nope.txt");
    const { file, errors } = firstError(text);
    expect(errors[0]!.message).toMatch(/^blocklist nope\.txt: cannot read .*nope\.txt: ENOENT/);
    expect(errors[0]!.source).toEqual({ file, ...posOf(text, '"nope.txt"') });
  });

  it("ip_forward = 0 while a network needs the internet", () => {
    const text = NETS + '\n[sysctl]\n"net.ipv4.ip_forward" = 0\n';
    const { file, errors } = firstError(text);
    expect(errors[0]!.message).toMatch(/sysctl net\.ipv4\.ip_forward = 0, but network "front" has internet = true/);
    expect(errors[0]!.source).toEqual({ file, ...posOf(text, '"net.ipv4.ip_forward"') });
  });
});
