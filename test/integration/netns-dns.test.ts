// Issue 15, DNS and discovery: per-network nameservers and search domains in
// /etc/netns/<ns>/resolv.conf (a namespace on two networks gets its default network's first),
// and every endpoint of a namespace's networks by name in /etc/netns/<ns>/hosts — proved with
// the real CLI, `ip netns exec` (which bind-mounts both over /etc), getent and nc. A
// resolv.conf that was there before comes back byte for byte on destroy; nothing else stays.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, posOf, requireBuild, run } from "./harness.js";
import { Topology, applyConverged } from "./nft-topology.js";

const CONFIG = `
[networks.db]
subnet = "10.161.0.0/24"
internet = false
dns = ["10.161.0.53"]
search = ["db.corp.example"]

[networks.app]
subnet = "10.162.0.0/24"
dns = ["10.162.0.53", "fd00:162::53", "10.161.0.53"]
search = ["corp.example"]
ipv6 = { subnet = "fd00:162::/64" }

[networks.quiet]
subnet = "10.163.0.0/24"
discovery = false

[[endpoints]]
name = "pg"
network = "db"
ip = "10.161.0.10"

[[endpoints]]
name = "web"
network = "app"
ip = "10.162.0.10"
ip6 = "fd00:162::10"

[[endpoints]]
name = "job-db"
network = "db"
netns = "job"
ip = "10.161.0.20"

[[endpoints]]
name = "job-app"
network = "app"
netns = "job"
ip = "10.162.0.20"
default = true

[[endpoints]]
name = "lone"
network = "quiet"
`;

/** A resolv.conf a job runner put there before bolt: no final newline, odd spacing, kept byte for byte. */
const BEFORE = "# the runner's own\nnameserver   192.0.2.53\noptions ndots:2";

const mark = (target: string) => `# managed by bolt for target netns ${target}; edits are overwritten, bolt destroy puts back what was here`;

describe.skipIf(!!SKIP_REASON)("namespace DNS and name discovery", () => {
  const t = new Topology();
  const sb = t.sb;
  const etc = (ep: string, f: string) => `/etc/netns/${t.ns(ep)}/${f}`;
  let file = "";

  beforeAll(async () => {
    requireBuild();
    await t.build();
    file = sb.write("bolt-network.toml", CONFIG);
    mkdirSync(`/etc/netns/${t.ns("web")}`, { recursive: true });
    writeFileSync(etc("web", "resolv.conf"), BEFORE);
  });
  afterAll(async () => {
    await t.cleanup();
    for (const ep of ["pg", "web", "job", "lone"]) rmSync(`/etc/netns/${t.ns(ep)}`, { recursive: true, force: true });
  });

  it("applies; a second plan is empty", async () => {
    await applyConverged(sb, [file]);
  });

  it("resolv.conf per namespace: its networks' nameservers (the default network's first, deduplicated, at most 3) and search domains", () => {
    expect(readFileSync(etc("pg", "resolv.conf"), "utf8")).toBe(`${mark(sb.target)}\nnameserver 10.161.0.53\nsearch db.corp.example\n`);
    expect(readFileSync(etc("job", "resolv.conf"), "utf8")).toBe(
      `${mark(sb.target)}\nnameserver 10.162.0.53\nnameserver fd00:162::53\nnameserver 10.161.0.53\nsearch corp.example db.corp.example\n`,
    );
    // The file that was there rides along (base64) to be put back.
    const web = readFileSync(etc("web", "resolv.conf"), "utf8");
    expect(web.startsWith(`${mark(sb.target)}\nnameserver 10.162.0.53\n`)).toBe(true);
    const kept = web.split("\n").filter((l) => l.startsWith("# bolt-original-base64: "));
    expect(Buffer.from(kept.map((l) => l.slice(24)).join(""), "base64").toString()).toBe(BEFORE);
    // No dns on its network: no resolv.conf (the host's is used), and discovery is off there.
    expect(existsSync(`/etc/netns/${t.ns("lone")}`)).toBe(false);
  });

  it("ip netns exec sees them as /etc/resolv.conf and /etc/hosts", async () => {
    const r = await run(["ip", "netns", "exec", t.ns("job"), "cat", "/etc/resolv.conf"]);
    expect(r.stdout).toContain("nameserver 10.162.0.53");
    const h = await run(["ip", "netns", "exec", t.ns("pg"), "getent", "hosts", "localhost"]);
    expect(h.code, h.stderr).toBe(0);
  });

  it("discovery: every endpoint of a namespace's networks by name (IPv6 too), none of other networks", async () => {
    // -s files: a name that is not there would otherwise wait for the (unreachable) nameservers.
    const get = async (ns: string, name: string, family = "ahostsv4", only: string[] = []) => {
      const r = await run(["ip", "netns", "exec", ns, "getent", ...only, family, name]);
      return r.code === 0 ? r.stdout.split(/\s+/)[0] : undefined;
    };
    expect(await get(t.ns("job"), "pg")).toBe("10.161.0.10");
    expect(await get(t.ns("job"), "web")).toBe("10.162.0.10");
    expect(await get(t.ns("job"), "web", "ahostsv6")).toBe("fd00:162::10");
    expect(await get(t.ns("pg"), "job-db")).toBe("10.161.0.20");
    // pg is on db only: web (app) is not its to know.
    expect(await get(t.ns("pg"), "web", "ahostsv4", ["-s", "files"])).toBeUndefined();
    expect(await get(t.ns("web"), "job-app")).toBe("10.162.0.20");
  });

  it("nc NAME PORT between endpoints", async () => {
    await t.serveTcp(t.ns("web"), 8080, "web");
    await t.serveTcp(t.ns("pg"), 5432, "pg");
    const nc = async (ns: string, name: string, port: number) =>
      (await run(["ip", "netns", "exec", ns, "nc", "-N", "-w", "2", name, String(port)], "")).stdout.trim();
    expect(await nc(t.ns("job"), "web", 8080)).toBe("web");
    expect(await nc(t.ns("job"), "pg", 5432)).toBe("pg");
  });

  it("a file edited by hand is put back; a plan after is empty", async () => {
    writeFileSync(etc("pg", "hosts"), `${readFileSync(etc("pg", "hosts"), "utf8")}10.161.0.99\tintruder\n`);
    const p = await sb.bolt(["plan", "--detailed-exitcode", "-f", file]);
    expect(p.code, p.stdout).toBe(2);
    expect(p.stdout).toMatch(/~ resolver "bolt-t-\w+-pg\/hosts"/);
    await applyConverged(sb, [file]);
    expect(readFileSync(etc("pg", "hosts"), "utf8")).not.toContain("intruder");
  });

  it("discovery = false takes the hosts files away, dns stays", async () => {
    const off = sb.write("off.toml", CONFIG.replace('search = ["db.corp.example"]\n', 'search = ["db.corp.example"]\ndiscovery = false\n'));
    await applyConverged(sb, [off]);
    expect(existsSync(etc("pg", "hosts"))).toBe(false);
    expect(existsSync(etc("pg", "resolv.conf"))).toBe(true);
    // job is still on app, whose discovery is on: it knows app's endpoints only.
    expect(readFileSync(etc("job", "hosts"), "utf8")).not.toMatch(/\tpg$/m);
    await applyConverged(sb, [file]);
  });

  it("destroy: the runner's resolv.conf back byte for byte, every other file and directory gone", async () => {
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(readFileSync(etc("web", "resolv.conf"), "utf8")).toBe(BEFORE);
    expect(existsSync(etc("web", "hosts"))).toBe(false);
    for (const ep of ["pg", "job", "lone"]) expect(existsSync(`/etc/netns/${t.ns(ep)}`), ep).toBe(false);
  });
});

describe.skipIf(!!SKIP_REASON)("namespace DNS: bad input is one line at file:line:col, nothing touched", () => {
  const t = new Topology();
  const sb = t.sb;
  const NET = (extra: string) => `
[networks.db]
subnet = "10.164.0.0/24"
${extra}

[[endpoints]]
name = "a"
network = "db"
`;
  beforeAll(async () => {
    requireBuild();
    await t.build();
  });
  afterAll(() => t.cleanup());

  const cases: [string, string, string, RegExp][] = [
    ["a dns entry that is not an IP", 'dns = ["dns.google"]', '"dns.google"', /error: .*dns/],
    ["four nameservers", 'dns = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]', "dns = [", /error: .*dns/],
    [
      "a search domain that is not a domain name",
      'dns = ["10.0.0.53"]\nsearch = ["corp..example"]',
      '"corp..example"',
      /error: network "db": search "corp\.\.example" is not a domain name: it has an empty label/,
    ],
    ["search without dns", 'search = ["corp.example"]', "search = [", /error: network "db": search is set but dns is not/],
  ];
  for (const [what, extra, needle, msg] of cases)
    it(what, async () => {
      const text = NET(extra);
      const f = sb.write("bad.toml", text);
      const r = await sb.bolt(["plan", "-f", f]);
      expect(r.code, r.stderr).toBe(1);
      const line = r.stderr.split("\n").find((l) => l.includes("error:"))!;
      expect(line, r.stderr).toMatch(msg);
      const at = posOf(text, needle);
      expect(line.startsWith(`${f}:${at.line}:`), line).toBe(true);
      expect(existsSync(`/etc/netns/${t.ns("a")}`)).toBe(false);
    });
});
