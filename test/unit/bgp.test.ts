// [routing.bgp] (issue 12): the BIRD config bolt renders (golden text, and BIRD's own parser
// accepts it where bird is installed), the `birdc show protocols all` parser on output
// recorded from two real bird instances in namespaces, and bad input at file:line:col.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import { parseProtocolsAll, parseServerTime, sessionLine } from "../../reconcilers/bgp/birdc.js";
import { bgpReconciler } from "../../reconcilers/bgp/index.js";
import { splitTail } from "../../src/core/tail-split.js";
import { emptyIntent } from "../../src/core/intent.js";
import type { Change, PlanContext, RenderedOp, Resource } from "../../src/core/resource.js";
import { BGP } from "../../reconcilers/bgp/intent.js";
import { configDigest, maskPasswords, parseHeader, renderBirdConfig, summary } from "../../reconcilers/bgp/render.js";

const FIX = fileURLToPath(new URL("../../fixtures/bird/", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "bolt-bgp-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HAS_BIRD = (() => {
  try {
    execFileSync("bird", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

function write(name: string, text: string, mode = 0o644): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

const PASSWORD = write("peer.pass", "s3cret\n", 0o600);

const GOOD = `[networks.lan]
subnet = "10.92.0.0/24"
gateway = "10.92.0.1"

[routing.bgp]
router_id = "10.91.0.1"
local_asn = 65001
networks = ["10.93.0.0/24", "fd93::/48"]
announce_bolt_networks = true

[[routing.bgp.neighbors]]
ip = "10.91.0.2"
remote_asn = 65002
password_file = "peer.pass"
import = ["10.0.0.0/8{16,24}"]

[[routing.bgp.neighbors]]
ip = "fd91::2"
remote_asn = 65002
export = "none"
`;

function intentOf(text: string) {
  const f = write("good.toml", text);
  const b = fragment(loadIntent([f], "").intent, BGP);
  expect(b).toBeDefined();
  return b!;
}

function errorsOf(text: string, name = "bad.toml"): { file: string; errors: Diagnostic[] } {
  const file = write(name, text);
  let err: unknown;
  try {
    loadIntent([file], "");
  } catch (e) {
    err = e;
  }
  expect(err, "the config should be refused").toBeInstanceOf(ConfigError);
  return { file, errors: (err as ConfigError).diagnostics.filter((d) => d.severity === "error") };
}

/** 1-based line and column of the first occurrence of `needle` in `text`. */
function at(text: string, needle: string): { line: number; col: number } {
  const i = text.indexOf(needle);
  expect(i, needle).toBeGreaterThanOrEqual(0);
  const before = text.slice(0, i).split("\n");
  return { line: before.length, col: before[before.length - 1]!.length + 1 };
}

describe("BIRD config rendering", () => {
  it("renders the golden config: header, kernel export of BGP routes only, static announces, one protocol per neighbor", () => {
    const b = intentOf(GOOD);
    const text = renderBirdConfig(b, new Map([[PASSWORD, "s3cret"]])).text.replaceAll(dir, "<dir>");
    const golden = join(FIX, "rendered-two-neighbors.conf");
    if (process.env.BOLT_UPDATE_GOLDEN) writeFileSync(golden, text);
    expect(text).toBe(readFileSync(golden, "utf8"));
  });

  it("the template (passwords masked) has the same digest as the real config, and the header reads back the summary", () => {
    const b = intentOf(GOOD);
    const real = renderBirdConfig(b, new Map([[PASSWORD, "s3cret"]])).text;
    const template = renderBirdConfig(b).text;
    expect(template).not.toContain("s3cret");
    expect(maskPasswords(real)).toBe(template);
    expect(configDigest(real)).toBe(configDigest(template));
    expect(parseHeader(real)).toEqual(summary(b));
    expect(summary(b).announce).toBe("10.93.0.0/24, fd93::/48, 10.92.0.0/24");
  });

  it("a changed password file content changes the digest (the plan shows a change, never the password)", () => {
    const b = intentOf(GOOD);
    const other = { ...b, neighbors: b.neighbors.map((n) => (n.passwordFile ? { ...n, passwordDigest: "0".repeat(64) } : n)) };
    expect(configDigest(renderBirdConfig(other).text)).not.toBe(configDigest(renderBirdConfig(b).text));
  });

  it.skipIf(!HAS_BIRD)("bird -p accepts the rendered config", () => {
    const b = intentOf(GOOD);
    const f = write("bird.conf", renderBirdConfig(b, new Map([[PASSWORD, "s3cret"]])).text, 0o600);
    expect(() => execFileSync("bird", ["-p", "-c", f], { stdio: "pipe" })).not.toThrow();
  });

  it("maps each rendered line back to the Boltfile key that produced it (where bird -p errors are reported)", () => {
    const b = intentOf(GOOD);
    const r = renderBirdConfig(b);
    const lines = r.text.split("\n");
    const importLine = lines.findIndex((l) => l.includes("import where net ~")) + 1;
    expect(r.sources.get(importLine)?.line).toBe(at(GOOD, 'import = ["10.0.0.0').line);
    const routeLine = lines.findIndex((l) => l.includes("route fd93::/48")) + 1;
    expect(r.sources.get(routeLine)?.line).toBe(at(GOOD, "networks = [").line);
  });
});

describe("birdc show protocols all (recorded from BIRD 2.0.12)", () => {
  const announcer = readFileSync(join(FIX, "show-protocols-all-announcer.txt"), "utf8");
  const receiver = readFileSync(join(FIX, "show-protocols-all-receiver.txt"), "utf8");

  it("parses every protocol with its channels", () => {
    const ps = parseProtocolsAll(announcer);
    expect(ps.map((p) => `${p.name}/${p.proto}/${p.state}`)).toEqual([
      "device1/Device/up",
      "kernel4/Kernel/up",
      "kernel6/Kernel/up",
      "announce4/Static/up",
      "announce6/Static/up",
      "peer1/BGP/up",
      "peer2/BGP/up",
      "peer3/BGP/start",
    ]);
    const peer1 = ps.find((p) => p.name === "peer1")!;
    expect(peer1).toMatchObject({
      bgpState: "Established",
      neighborAddress: "10.77.0.2",
      neighborAs: 65002,
      localAs: 65001,
      since: "2026-12-02 16:09:03",
      info: "Established",
    });
    expect(peer1.channels).toEqual([{ family: "ipv4", state: "UP", imported: 0, exported: 2, preferred: 0 }]);
    const peer2 = ps.find((p) => p.name === "peer2")!;
    expect(peer2.neighborAddress).toBe("fd77::2");
    expect(peer2.channels[0]).toMatchObject({ family: "ipv6", exported: 1 });
    expect(ps.find((p) => p.name === "peer3")).toMatchObject({
      bgpState: "Idle",
      neighborAddress: "10.77.0.3",
      neighborAs: 65003,
      channels: [{ state: "DOWN", imported: 0 }],
    });
  });

  it("the receiving side counts prefixes received", () => {
    const ps = parseProtocolsAll(receiver).filter((p) => p.proto === "BGP");
    expect(ps.map((p) => [p.neighborAddress, p.bgpState, p.channels[0]!.imported])).toEqual([
      ["10.77.0.1", "Established", 2],
      ["fd77::1", "Established", 1],
    ]);
  });

  it("session lines for bolt show: state, uptime from BIRD's own clock, prefix counts", () => {
    const now = parseServerTime(readFileSync(join(FIX, "show-status.txt"), "utf8"));
    expect(now).toBe("2026-12-02 16:09:07.907");
    const ps = parseProtocolsAll(announcer);
    expect(sessionLine(ps.find((p) => p.name === "peer1")!, now)).toBe("10.77.0.2 AS65002: Established for 5s, 0 prefix(es) received, 2 announced");
    expect(sessionLine(ps.find((p) => p.name === "peer3")!, now)).toBe("10.77.0.3 AS65003: Idle for 9s, 0 prefix(es) received, 0 announced");
  });

  it("BIRD's default time format (time of day only) still parses; the uptime is then unknown", () => {
    const ps = parseProtocolsAll(
      "BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\npeer1      BGP        ---        start  16:08:26.598  Active        \n  BGP state:          Active\n",
    );
    expect(ps[0]).toMatchObject({ name: "peer1", since: "16:08:26.598", info: "Active", bgpState: "Active" });
    expect(sessionLine(ps[0]!, "2026-12-02 16:09:07.907")).toBe("peer1 AS?: Active, 0 prefix(es) received, 0 announced");
  });

  it("run-dir files come back from one tail -n +1 by path", () => {
    const m = splitTail("==> /r/bird.pid <==\n4242\n\n==> /r/loaded.conf <==\n# bolt asn: 1\nrouter id 1.2.3.4;\n");
    expect(m.get("/r/bird.pid")).toBe("4242\n");
    expect(m.get("/r/loaded.conf")).toBe("# bolt asn: 1\nrouter id 1.2.3.4;\n");
    expect(splitTail("").size).toBe(0);
  });
});

describe("[routing.bgp] bad input: an error at file:line:col, nothing else runs", () => {
  const base = (bgp: string, neighbor = 'ip = "10.91.0.2"\nremote_asn = 65002\n') => `[routing.bgp]\n${bgp}\n[[routing.bgp.neighbors]]\n${neighbor}`;
  const cases: [string, string, string, RegExp][] = [
    ["ASN out of range (schema)", base('router_id = "10.91.0.1"\nlocal_asn = 4294967296'), "4294967296", /must be <= 4294967295/],
    ["ASN zero (schema)", base('router_id = "10.91.0.1"\nlocal_asn = 0'), "0\n", /must be >= 1/],
    ["AS_TRANS", base('router_id = "10.91.0.1"\nlocal_asn = 23456'), "23456", /AS_TRANS/],
    ["router_id not IPv4 (schema)", base('router_id = "fd00::1"\nlocal_asn = 65001'), '"fd00::1"', /pattern|IPv4/],
    [
      "router_id with an octet over 255",
      base('router_id = "10.0.0.300"\nlocal_asn = 65001'),
      '"10.0.0.300"',
      /router_id "10\.0\.0\.300" is not an IPv4 address/,
    ],
    [
      "neighbor address not an IP (schema)",
      base('router_id = "10.91.0.1"\nlocal_asn = 65001', 'ip = "peer.example"\nremote_asn = 65002\n'),
      '"peer.example"',
      /is not valid/,
    ],
    [
      "neighbor address with an octet over 255",
      base('router_id = "10.91.0.1"\nlocal_asn = 65001', 'ip = "10.91.0.256"\nremote_asn = 65002\n'),
      '"10.91.0.256"',
      /is not an IP address/,
    ],
    [
      "remote ASN out of range",
      base('router_id = "10.91.0.1"\nlocal_asn = 65001', 'ip = "10.91.0.2"\nremote_asn = 99999999999\n'),
      "99999999999",
      /must be <= 4294967295/,
    ],
    [
      "password in the config",
      base('router_id = "10.91.0.1"\nlocal_asn = 65001', 'ip = "10.91.0.2"\nremote_asn = 65002\npassword = "hunter2"\n'),
      "password",
      /never written in the config.*password_file/,
    ],
    [
      "import pattern of the other family",
      base('router_id = "10.91.0.1"\nlocal_asn = 65001', 'ip = "10.91.0.2"\nremote_asn = 65002\nimport = ["fd00::/8+"]\n'),
      '"fd00::/8+"',
      /is IPv6, but the session with 10\.91\.0\.2 carries IPv4 routes/,
    ],
    [
      "announced prefix with host bits",
      base('router_id = "10.91.0.1"\nlocal_asn = 65001\nnetworks = ["10.93.0.1/24"]'),
      '"10.93.0.1/24"',
      /host bits set \(did you mean 10\.93\.0\.0\/24\?\)/,
    ],
  ];
  it.each(cases)("%s", (name, text, needle, message) => {
    const { file, errors } = errorsOf(text, `${name.replace(/\W+/g, "-")}.toml`);
    const hit = errors.find((e) => message.test(e.message));
    expect(hit, `${errors.map((e) => `${e.source?.line}:${e.source?.col} ${e.message}`).join("\n")}`).toBeDefined();
    expect(hit!.source).toMatchObject({ file, ...at(text, needle) });
    expect(JSON.stringify(errors)).not.toContain("hunter2");
  });

  it("a password file readable by group or others is refused at password_file", () => {
    const loose = write("loose.pass", "s3cret\n", 0o644);
    const text = base('router_id = "10.91.0.1"\nlocal_asn = 65001', `ip = "10.91.0.2"\nremote_asn = 65002\npassword_file = "${loose}"\n`);
    const { file, errors } = errorsOf(text, "loose.toml");
    expect(errors[0]!.message).toMatch(/has mode 0644: group and others must have no access \(chmod 600/);
    expect(errors[0]!.source).toMatchObject({ file, ...at(text, `"${loose}"`) });
    expect(JSON.stringify(errors)).not.toContain("s3cret");
  });

  it("a missing password file is an error (a warning only offline, off the target host)", () => {
    const text = base('router_id = "10.91.0.1"\nlocal_asn = 65001', 'ip = "10.91.0.2"\nremote_asn = 65002\npassword_file = "nope.pass"\n');
    expect(errorsOf(text, "missing.toml").errors[0]!.message).toMatch(/nope\.pass: does not exist/);
    const f = write("missing-offline.toml", text);
    const { warnings } = loadIntent([f], "", { offline: true });
    expect(warnings.some((w) => /does not exist/.test(w.message))).toBe(true);
  });

  it("enable_bgp = false keeps the table without running BGP", () => {
    const f = write("off.toml", `[routing]\nenable_bgp = false\n\n${base('router_id = "10.91.0.1"\nlocal_asn = 65001')}`);
    expect(fragment(loadIntent([f], "").intent, BGP)).toBeUndefined();
  });
});

describe("bgp ops and their undo (pure render)", () => {
  const RUN = "/run/bolt-test";
  const prev = process.env.BOLT_RUN_DIR;
  process.env.BOLT_RUN_DIR = RUN;
  afterAll(() => {
    if (prev === undefined) delete process.env.BOLT_RUN_DIR;
    else process.env.BOLT_RUN_DIR = prev;
  });
  const D = `${RUN}/bird/netns-bolt-t-x`;
  const ctxFor = (prepared: Record<string, unknown>): PlanContext => ({
    target: "bolt-t-x",
    intent: emptyIntent(),
    live: new Map(),
    leases: new Map(),
    netns: new Set(),
    facts: new Map(),
    desired: [],
    prepared: new Map([["bgp:bird", prepared]]),
  });
  const res = (spec: Record<string, string>, data: Record<string, unknown> = {}): Resource => ({
    kind: "bgp",
    name: "bird",
    id: "bgp:bird",
    keys: [],
    spec,
    data,
    deps: [],
    owned: true,
  });
  const change = (action: Change["action"], before?: Resource, after?: Resource): Change => ({
    id: "bgp:bird",
    kind: "bgp",
    name: "bird",
    action,
    before,
    after,
    changed: [],
    forcedBy: [],
  });
  const show = (ops: RenderedOp[]) =>
    ops.flatMap((o) => [
      `${o.phase} [${o.ns ?? "host"}] ${o.args.join(" ")}${o.stdin ? ` <<${o.stdin}` : ""}`,
      ...o.undo.map((u) => `  undo [${u.ns ?? "host"}] ${u.args.join(" ")}${u.stdin ? ` <<${u.stdin}` : ""}`),
    ]);

  it("create: run dir 0700, config 0600 filled by tee, bird started in the target, the loaded copy last", () => {
    const ops = bgpReconciler.render(change("create", undefined, res({ daemon: "running" })), ctxFor({ text: "NEW" }));
    expect(show(ops)).toEqual([
      `files [host] install -d -m 0700 ${D}`,
      `  undo [host] rm -rf -- ${D}`,
      `files [host] install -m 0600 /dev/null ${D}/bird.conf`,
      `files [host] tee ${D}/bird.conf <<NEW`,
      `daemon [bolt-t-x] bird -c ${D}/bird.conf -s ${D}/bird.ctl -P ${D}/bird.pid`,
      `  undo [host] pkill --pidfile ${D}/bird.pid --exact bird`,
      `conf [host] cp -p ${D}/bird.conf ${D}/loaded.conf`,
    ]);
  });

  it("update of a running bird: a failed configure is undone by the previous file and another configure", () => {
    const ops = bgpReconciler.render(change("update", res({ daemon: "running", config: "sha256:old" }), res({ daemon: "running" })), ctxFor({ text: "NEW" }));
    expect(show(ops)).toEqual([
      `conf [host] cp -p ${D}/loaded.conf ${D}/previous.conf`,
      `conf [host] tee ${D}/bird.conf <<NEW`,
      `  undo [host] cp -p ${D}/previous.conf ${D}/bird.conf`,
      `conf [host] birdc -s ${D}/bird.ctl configure`,
      `  undo [host] cp -p ${D}/previous.conf ${D}/bird.conf`,
      `  undo [host] birdc -s ${D}/bird.ctl configure`,
      `conf [host] cp -p ${D}/bird.conf ${D}/loaded.conf`,
      `  undo [host] cp -p ${D}/previous.conf ${D}/loaded.conf`,
    ]);
  });

  it("a stopped bird is started again on the new config (no configure without a daemon)", () => {
    const ops = bgpReconciler.render(change("update", res({ daemon: "stopped", config: "sha256:old" }), res({ daemon: "running" })), ctxFor({ text: "NEW" }));
    expect(show(ops).filter((l) => !l.startsWith(" "))).toEqual([
      `files [host] install -d -m 0700 ${D}`,
      `files [host] install -m 0600 /dev/null ${D}/bird.conf`,
      `files [host] tee ${D}/bird.conf <<NEW`,
      `daemon [bolt-t-x] bird -c ${D}/bird.conf -s ${D}/bird.ctl -P ${D}/bird.pid`,
      `conf [host] cp -p ${D}/bird.conf ${D}/loaded.conf`,
    ]);
  });

  it("delete: bolt's bird by its pid file (and only a bird), waited for, then its files; the undo restores both", () => {
    const ops = bgpReconciler.render(change("delete", res({ daemon: "running", config: "sha256:old" }, { pid: 4242 })), ctxFor({ previous: "OLD" }));
    expect(show(ops)).toEqual([
      `daemon [host] pkill --pidfile ${D}/bird.pid --exact bird`,
      `  undo [bolt-t-x] bird -c ${D}/bird.conf -s ${D}/bird.ctl -P ${D}/bird.pid`,
      "daemon [host] tail --pid=4242 -s 0.1 -f /dev/null",
      `files [host] rm -rf -- ${D}`,
      `  undo [host] install -d -m 0700 ${D}`,
      `  undo [host] install -m 0600 /dev/null ${D}/bird.conf`,
      `  undo [host] tee ${D}/bird.conf <<OLD`,
      `  undo [host] cp -p ${D}/bird.conf ${D}/loaded.conf`,
    ]);
  });
});
