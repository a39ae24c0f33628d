// Bad input (issue 2): every class of mistake gives a ConfigError whose first error names
// the exact file:line:col of the offending key or value, with a message (and hint) a user
// can act on. Positions below were counted by hand from the files in fixtures/bad/.
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { MAX_CONFIG_BYTES } from "../../src/config/load.js";
import { kinds } from "./helpers/builders.js";

const BAD = fileURLToPath(new URL("../../fixtures/bad/", import.meta.url));

function configError(files: string[]): { first: Diagnostic; errors: Diagnostic[]; err: ConfigError } {
  let err: unknown;
  try {
    loadIntent(files, "");
  } catch (e) {
    err = e;
  }
  expect(err, `loading ${files.join(", ")} should fail`).toBeInstanceOf(ConfigError);
  const errors = (err as ConfigError).diagnostics.filter((d) => d.severity === "error");
  expect(errors.length).toBeGreaterThan(0);
  return { first: errors[0]!, errors, err: err as ConfigError };
}

interface Case {
  file: string;
  line: number;
  col: number;
  message: RegExp;
  hint?: RegExp;
}

const cases: Record<string, Case> = {
  "TOML syntax error (second `=`)": { file: "toml-syntax.toml", line: 3, col: 7, message: /^TOML syntax error: Unexpected token/ },
  "YAML syntax error (two keys on one line)": {
    file: "yaml-syntax.yaml",
    line: 5,
    col: 13,
    message: /^YAML syntax error: Nested mappings are not allowed in compact mappings/,
  },
  "YAML duplicate key": { file: "yaml-duplicate-key.yaml", line: 5, col: 3, message: /^YAML syntax error: Map keys must be unique/ },
  "unknown top-level table": { file: "unknown-key-top.toml", line: 2, col: 1, message: /^unknown key "netwrks" in \/$/, hint: /^did you mean "networks"\?$/ },
  "unknown nested key (indented)": {
    file: "unknown-key-nested.toml",
    line: 2,
    col: 3,
    message: /^unknown key "subnt" in \/networks\/web$/,
    hint: /^did you mean "subnet"\?$/,
  },
  "unknown nested key in volantd.yaml": {
    file: "unknown-key-yaml.yaml",
    line: 5,
    col: 5,
    message: /^unknown key "gatway" in \/networking\/bridge$/,
    hint: /^did you mean "gateway"\?$/,
  },
  "loopback subnet": {
    file: "subnet-loopback.toml",
    line: 2,
    col: 10,
    message: /subnet "127\.10\.0\.0\/24" is loopback \(127\.0\.0\.0\/8\)/,
    hint: /private range/,
  },
  "multicast subnet": { file: "subnet-multicast.toml", line: 2, col: 10, message: /subnet "239\.1\.0\.0\/24" is multicast \(224\.0\.0\.0\/4\)/ },
  "multicast MAC": { file: "mac-multicast.toml", line: 7, col: 7, message: /mac 01:00:5e:00:00:01 is a multicast address/ },
  "all-zero MAC": { file: "mac-zero.toml", line: 7, col: 7, message: /mac 00:00:00:00:00:00 is all zeros/ },
  "bad CIDR (octet 300)": { file: "bad-cidr.toml", line: 2, col: 10, message: /subnet "10\.1\.300\.0\/24" is not an IPv4 CIDR/ },
  "host bits set": {
    file: "host-bits.toml",
    line: 2,
    col: 11,
    message: /subnet "10\.1\.0\.5\/24" has host bits set/,
    hint: /did you mean "10\.1\.0\.0\/24"\?/,
  },
  "gateway not an address": { file: "gateway-not-ip.toml", line: 3, col: 11, message: /gateway "10\.1\.0\.256" is not an IPv4 address/ },
  "gateway outside subnet": {
    file: "gateway-outside.toml",
    line: 3,
    col: 11,
    message: /^network "web": gateway 10\.2\.0\.1 is outside subnet 10\.1\.0\.0\/24$/,
  },
  "gateway = network address": { file: "gateway-network.toml", line: 3, col: 11, message: /gateway 10\.1\.0\.0 is the network address of 10\.1\.0\.0\/24/ },
  "gateway = broadcast address": {
    file: "gateway-broadcast.toml",
    line: 3,
    col: 11,
    message: /gateway 10\.1\.0\.255 is the broadcast address of 10\.1\.0\.0\/24/,
  },
  "gateway outside subnet (volantd.yaml)": {
    file: "volantd-gateway-outside.yaml",
    line: 5,
    col: 14,
    message: /gateway 10\.201\.0\.1 is outside subnet 10\.200\.0\.0\/16/,
  },
  "overlapping subnets between two networks": {
    file: "overlap.toml",
    line: 5,
    col: 10,
    message: /^network "small": subnet 10\.1\.5\.0\/24 overlaps network "big" \(10\.1\.0\.0\/16, .*overlap\.toml:1\)$/,
  },
  "dangling endpoint network": {
    file: "dangling-network.toml",
    line: 6,
    col: 11,
    message: /^endpoint "a": network "wbe" is not defined$/,
    hint: /^did you mean "web"\?$/,
  },
  "duplicate endpoint names": { file: "duplicate-endpoint.toml", line: 10, col: 8, message: /^endpoint "a" is defined twice$/ },
  "duplicate static ips": { file: "duplicate-ip.toml", line: 12, col: 8, message: /^endpoint "b": ip 10\.1\.0\.7 is already used by endpoint "a"$/ },
  "duplicate bridge names": { file: "duplicate-bridge.toml", line: 7, col: 10, message: /^network "api": bridge "br0" is already used by network "web"$/ },
  "network name differs from its table key": {
    file: "network-name-mismatch.toml",
    line: 2,
    col: 8,
    message: /name "wbe" must equal the table key \[networks\.web\]/,
  },
  "bridge name over 15 chars": {
    file: "bridge-too-long.toml",
    line: 2,
    col: 10,
    message: /bridge: must NOT have more than 15 characters \(Linux interface names are at most 15 characters\)/,
  },
  "bridge name with a semicolon": { file: "bridge-bad-chars.toml", line: 3, col: 10, message: /"br;x" is not valid: A kernel interface name: letters, digits/ },
  "bridge name with a space": { file: "bridge-space.toml", line: 3, col: 10, message: /"br x" is not valid: A kernel interface name/ },
  "reversed ip_range": {
    file: "range-reversed.toml",
    line: 3,
    col: 12,
    message: /ip_range is reversed \(10\.1\.0\.200 > 10\.1\.0\.100\)/,
    hint: /swap start and end/,
  },
  "ip_range outside subnet (sub-table header)": {
    file: "range-outside.toml",
    line: 4,
    col: 1,
    message: /ip_range 10\.1\.0\.100–10\.1\.1\.20 is not inside subnet 10\.1\.0\.0\/24/,
  },
  "MTU 0": { file: "mtu-zero.toml", line: 3, col: 7, message: /\/networks\/web\/mtu: must be >= 68/ },
  "MTU 70000": { file: "mtu-too-big.toml", line: 3, col: 10, message: /\/networks\/web\/mtu: must be <= 65535/ },
  "endpoint ip = gateway": { file: "endpoint-ip-gateway.toml", line: 7, col: 6, message: /^endpoint "a": ip 10\.1\.0\.1 is the gateway of network "web"$/ },
  "endpoint ip outside subnet": {
    file: "endpoint-ip-outside.toml",
    line: 7,
    col: 6,
    message: /^endpoint "a": ip 10\.9\.0\.5 is outside subnet 10\.1\.0\.0\/24$/,
  },
  "sysctl key in path form": {
    file: "sysctl-bad-key.toml",
    line: 3,
    col: 1,
    message: /"net\/ipv4\/conf\/all\/forwarding" is not valid: A sysctl key in dotted form, e\.g\. "net\.ipv4\.ip_forward"/,
  },
};

describe("each bad input class: ConfigError at the exact file:line:col", () => {
  it.each(Object.entries(cases))("%s", (_, c) => {
    const file = BAD + c.file;
    const { first, err } = configError([file]);
    expect(first.source).toEqual({ file, line: c.line, col: c.col });
    expect(first.message).toMatch(c.message);
    if (c.hint) expect(first.hint).toMatch(c.hint);
    // What the CLI prints: file:line:col: error: message
    expect(err.message.split("\n")[0]).toBe(`${file}:${c.line}:${c.col}: error: ${first.message}${first.hint ? ` (${first.hint})` : ""}`);
  });

  it("a second file repeating a network name is reported in that file", () => {
    const a = BAD + "two-files-a.toml";
    const b = BAD + "two-files-b.toml";
    expect(() => loadIntent([a], "")).not.toThrow();
    expect(() => loadIntent([b], "")).not.toThrow();
    const { first } = configError([a, b]);
    expect(first.message).toBe('network "web" is defined twice');
    expect(first.source).toEqual({ file: b, line: 2, col: 1 });
  });

  it("errors from several files are all reported, not just the first file's", () => {
    const { errors } = configError([BAD + "mtu-zero.toml", BAD + "unknown-key-yaml.yaml"]);
    expect(errors.map((e) => `${e.source!.file.slice(BAD.length)}:${e.source!.line}`)).toEqual(["mtu-zero.toml:3", "unknown-key-yaml.yaml:5"]);
  });
});

describe("known but unsupported keys", () => {
  it('are warnings "accepted, not enforced", at the key, and not errors', () => {
    const file = BAD + "not-enforced.toml";
    const { intent, warnings } = loadIntent([file], "");
    expect(warnings.every((w) => w.severity === "warning")).toBe(true);
    expect(warnings.map((w) => [w.message, w.source])).toEqual([
      ["accepted, not enforced: networking.enable_mesh — not implemented in this version yet", { file, line: 2, col: 1 }],
    ]);
    expect(kinds(intent).networks.map((n) => n.name)).toEqual(["web"]);
  });
});

describe("files that cannot be read", () => {
  const tmp = mkdtempSync(join(tmpdir(), "bolt-config-errors-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("a missing file", () => {
    const file = join(tmp, "missing.toml");
    const { errors } = configError([file]);
    expect(errors).toEqual([{ severity: "error", message: "cannot read config file: no such file", source: { file, line: 1, col: 1 } }]);
  });

  it("a directory", () => {
    const dir = join(tmp, "conf.toml");
    mkdirSync(dir);
    const { errors } = configError([dir]);
    expect(errors).toEqual([{ severity: "error", message: "is a directory, not a config file", source: { file: dir, line: 1, col: 1 } }]);
  });

  it("/dev/zero and a FIFO are refused without reading (one would exhaust memory, the other block forever)", () => {
    expect(configError(["/dev/zero"]).errors).toEqual([
      {
        severity: "error",
        message: "is not a regular file (a character device): bolt reads config files only",
        source: { file: "/dev/zero", line: 1, col: 1 },
        hint: "write the config to a file first",
      },
    ]);
    const fifo = join(tmp, "fifo.toml");
    execFileSync("mkfifo", [fifo]);
    expect(configError([fifo]).errors.map((e) => e.message)).toEqual(["is not a regular file (a FIFO or pipe): bolt reads config files only"]);
  });

  it("YAML: an alias bomb, !!binary and an unknown tag are config errors (not a crash, not a silent string)", () => {
    const levels = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      ...["b", "c", "d", "e", "f", "g"].map((k, i) => `${k}: &${k} [${Array(10).fill(`*${"abcdef"[i]}`).join(", ")}]`),
    ];
    const bomb = join(tmp, "bomb.yaml");
    writeFileSync(bomb, `${levels.join("\n")}\nnetworking:\n  mode: bridge\n`);
    expect(configError([bomb]).errors[0]!.message).toMatch(/^YAML aliases expand too far/);
    const binary = join(tmp, "binary.yaml");
    writeFileSync(binary, "networking:\n  bridge:\n    name: !!binary aGVsbG8=\n");
    expect(configError([binary]).errors.length).toBeGreaterThan(0);
    const custom = join(tmp, "custom.yaml");
    writeFileSync(custom, "networking:\n  bridge:\n    name: !custom volant1\n");
    const e = configError([custom]).errors[0]!;
    expect(e.message).toMatch(/^YAML syntax error: .*tag/i);
    expect(e.source).toMatchObject({ file: custom, line: 3 });
  });

  it("a file over 4 MiB is refused before parsing", () => {
    expect(MAX_CONFIG_BYTES).toBe(4 * 1024 * 1024);
    const file = join(tmp, "huge.toml");
    // Valid TOML all the way: the refusal must come from the size, not from a parse error.
    const line = "# " + "x".repeat(1021) + "\n";
    writeFileSync(file, line.repeat(4096) + "a = 1\n");
    const { errors } = configError([file]);
    expect(errors).toEqual([
      { severity: "error", message: `config file is ${4096 * 1024 + 6} bytes; the limit is 4194304`, source: { file, line: 1, col: 1 } },
    ]);
  });

  it("a file of exactly 4 MiB is still read", () => {
    const file = join(tmp, "edge.toml");
    const body = '[networks.web]\nsubnet = "10.1.0.0/24"\n';
    writeFileSync(file, body + "#".repeat(MAX_CONFIG_BYTES - body.length - 1) + "\n");
    expect(kinds(loadIntent([file], "").intent).networks).toHaveLength(1);
  });
});
