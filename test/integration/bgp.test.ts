// [routing.bgp] through BIRD 2 (issue 12), between two namespaced hosts on a veth: A (AS 65001)
// announces its bolt network's subnet ("announce bolt networks"), B (AS 65002) installs it as
// `proto bird` and pings A's endpoint through it; both sessions use a TCP-MD5 password from a
// 0600 file. Changing the announcements reconfigures the running bird without dropping the
// session and withdraws the old prefix from B's kernel; a filter BIRD refuses is a plan error at
// its Boltfile line; a failing `birdc configure` rolls back to the old file; `bolt show --json`
// lists the session as Established with prefix counts; re-plans are empty after every apply;
// destroy stops bolt's birds (never another bird in the same namespace) and leaves both
// namespaces as they were.
import { execa } from "execa";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, bolt, ipJson, must, posOf, requireBuild, run, Sandbox, snapshot } from "./harness.js";
import type { Json, Snapshot } from "./harness.js";

const HAS_BIRD = (() => {
  try {
    return !!SKIP_REASON || existsSync("/usr/sbin/bird") || existsSync("/usr/bin/bird");
  } catch {
    return false;
  }
})();

const LINK = { a: "10.94.0.1", b: "10.94.0.2" } as const;
const LINK6 = { a: "fd94::1", b: "fd94::2" } as const;
const LAN = { subnet: "10.95.0.0/24", gateway: "10.95.0.1", web: "10.95.0.10" } as const;
/** The network's IPv6 half: announced by the same switch, over the IPv6 session. */
const LAN6 = { subnet: "fd95::/64", gateway: "fd95::1" } as const;
const STATIC = "10.96.0.0/24";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!!SKIP_REASON || !HAS_BIRD)("[routing.bgp]: two hosts exchange routes through bolt's own bird", () => {
  const sa = new Sandbox();
  const sb = new Sandbox();
  const before = new Map<string, Snapshot>();
  let env: Record<string, string> = {};
  let foreignPid = 0;
  const runDir = () => join(sa.dir, "run");
  const birdDir = (ns: string) => join(runDir(), "bird", `netns-${ns}`);

  beforeAll(async () => {
    requireBuild();
    await sa.addNetns();
    await sb.addNetns();
    await must(["ip", "link", "add", "bgpa0", "netns", sa.target, "type", "veth", "peer", "name", "bgpb0", "netns", sb.target]);
    for (const [ns, dev, ip] of [
      [sa.target, "bgpa0", LINK.a],
      [sb.target, "bgpb0", LINK.b],
    ] as const) {
      await must(["ip", "-n", ns, "address", "add", `${ip}/30`, "dev", dev]);
      await must(["ip", "-n", ns, "address", "add", `${ip === LINK.a ? LINK6.a : LINK6.b}/64`, "dev", dev, "nodad"]);
      await must(["ip", "-n", ns, "link", "set", dev, "up"]);
      await must(["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    mkdirSync(runDir(), { recursive: true });
    env = { BOLT_RUN_DIR: runDir() };
    for (const s of [sa, sb]) {
      const pw = s.write("bgp.pass", "md5-Secret-1\n");
      chmodSync(pw, 0o600);
    }
    // A bird bolt did not start, in A's namespace with its own socket: it must survive everything.
    const fconf = sa.write("foreign-bird.conf", "router id 10.94.0.1;\nprotocol device {}\n");
    await must(["ip", "netns", "exec", sa.target, "bird", "-c", fconf, "-s", join(sa.dir, "foreign.ctl"), "-P", join(sa.dir, "foreign.pid")]);
    foreignPid = await pidFromFile(join(sa.dir, "foreign.pid"));
    before.set(sa.target, await snapshot(sa.target));
    before.set(sb.target, await snapshot(sb.target));
  });
  afterAll(async () => {
    // Only the processes this test started, by pid: bolt's birds (if a test failed before
    // destroy) and the foreign one.
    for (const s of [sa, sb]) {
      const pid = await pidFromFile(join(birdDir(s.target), "bird.pid")).catch(() => 0);
      if (pid && isBird(pid)) process.kill(pid, "SIGTERM");
    }
    if (foreignPid && isBird(foreignPid)) process.kill(foreignPid, "SIGTERM");
    await sleep(300);
    await sa.cleanup();
    await sb.cleanup();
  });

  const fileA = (o: { boltNetworks?: boolean; statics?: string[]; importPatterns?: string[] } = {}) =>
    sa.write(
      "a.toml",
      [
        "[networks.lan]",
        `subnet = "${LAN.subnet}"`,
        `gateway = "${LAN.gateway}"`,
        `ipv6 = { subnet = "${LAN6.subnet}" }`,
        "",
        "[[endpoints]]",
        'name = "web"',
        'network = "lan"',
        `ip = "${LAN.web}"`,
        "",
        "[routing.bgp]",
        `router_id = "${LINK.a}"`,
        "local_asn = 65001",
        `announce_bolt_networks = ${o.boltNetworks ?? true}`,
        `networks = ${JSON.stringify(o.statics ?? [])}`,
        "",
        "[[routing.bgp.neighbors]]",
        `ip = "${LINK.b}"`,
        "remote_asn = 65002",
        'password_file = "bgp.pass"',
        ...(o.importPatterns ? [`import = ${JSON.stringify(o.importPatterns)}`] : []),
        "",
        "[[routing.bgp.neighbors]]",
        `ip = "${LINK6.b}"`,
        "remote_asn = 65002",
        'password_file = "bgp.pass"',
        "",
      ].join("\n"),
    );
  const fileB = () =>
    sb.write(
      "b.toml",
      [
        "[routing.bgp]",
        `router_id = "${LINK.b}"`,
        "local_asn = 65002",
        "",
        "[[routing.bgp.neighbors]]",
        `ip = "${LINK.a}"`,
        "remote_asn = 65001",
        'password_file = "bgp.pass"',
        "",
        "[[routing.bgp.neighbors]]",
        `ip = "${LINK6.a}"`,
        "remote_asn = 65001",
        'password_file = "bgp.pass"',
        "",
      ].join("\n"),
    );

  const apply = async (s: Sandbox, file: string, extraEnv: Record<string, string> = {}) => s.bolt(["apply", "-f", file], { env: { ...env, ...extraEnv } });
  const planExit = async (s: Sandbox, file: string) => (await s.bolt(["plan", "-f", file, "--detailed-exitcode"], { env })).code;
  const birdRoutes = async (ns: string) =>
    ((await ipJson(ns, ["-4", "route", "show", "proto", "bird"])) as Json[]).map((r) => `${r.dst} via ${r.gateway}`).sort();
  const birdRoutes6 = async (ns: string) =>
    ((await ipJson(ns, ["-6", "route", "show", "proto", "bird"])) as Json[]).map((r) => `${r.dst} via ${r.gateway}`).sort();
  const waitRoutes = async (ns: string, want: string[], ms = 20_000, read = birdRoutes) => {
    const until = Date.now() + ms;
    let got = await read(ns);
    while (JSON.stringify(got) !== JSON.stringify(want) && Date.now() < until) {
      await sleep(200);
      got = await read(ns);
    }
    return got;
  };
  const showJson = async (s: Sandbox) => {
    const r = await s.bolt(["show", "--json"], { env });
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as Json).resources.find((x: Json) => x.address === "bgp:bird") as Json;
  };
  const since = async (s: Sandbox) => {
    const out = await must(["birdc", "-s", join(birdDir(s.target), "bird.ctl"), "show", "protocols"]);
    return /^bolt_\S+\s+BGP\s+\S+\s+\S+\s+(\S+ \S+)/m.exec(out)?.[1];
  };

  it("B learns A's bolt network as proto bird and pings A's endpoint through it; re-plans are empty", async () => {
    const ra = await apply(sa, fileA());
    expect(ra.code, ra.stderr).toBe(0);
    const rb = await apply(sb, fileB());
    expect(rb.code, rb.stderr).toBe(0);
    expect(await waitRoutes(sb.target, [`${LAN.subnet} via ${LINK.a}`])).toEqual([`${LAN.subnet} via ${LINK.a}`]);
    const r = (await ipJson(sb.target, ["-4", "route", "show", LAN.subnet])) as Json[];
    expect(r[0]).toMatchObject({ dst: LAN.subnet, gateway: LINK.a, dev: "bgpb0", protocol: "bird" });
    // Nothing else reached A's kernel from BIRD (it exports only what BGP learned, and learned nothing).
    expect(await birdRoutes(sa.target)).toEqual([]);
    const ping = await run(["ip", "netns", "exec", sb.target, "ping", "-n", "-c", "2", "-W", "2", LAN.web]);
    expect(ping.code, ping.stdout).toBe(0);
    // The IPv6 half over the IPv6 session, and only there (the IPv4 session carries IPv4 routes).
    expect(await waitRoutes(sb.target, [`${LAN6.subnet} via ${LINK6.a}`], 20_000, birdRoutes6)).toEqual([`${LAN6.subnet} via ${LINK6.a}`]);
    const ping6 = await run(["ip", "netns", "exec", sb.target, "ping", "-6", "-n", "-c", "2", "-W", "2", LAN6.gateway]);
    expect(ping6.code, ping6.stdout).toBe(0);
    expect(await planExit(sa, fileA())).toBe(0);
    expect(await planExit(sb, fileB())).toBe(0);
    // bird's config holds the password: 0600 in a 0700 dir; never in a plan or the show output.
    const conf = join(birdDir(sa.target), "bird.conf");
    expect((await must(["stat", "-c", "%a", conf])).trim()).toBe("600");
    expect((await must(["stat", "-c", "%a", birdDir(sa.target)])).trim()).toBe("700");
    expect(readFileSync(conf, "utf8")).toContain('password "md5-Secret-1"');
    const plan = await sa.bolt(["plan", "--json", "-f", fileA({ statics: [STATIC] })], { env });
    expect(plan.stdout).not.toContain("md5-Secret-1");
  });

  it("bolt show --json lists the session as Established with prefix counts", async () => {
    let b: Json;
    const until = Date.now() + 15_000;
    do {
      b = await showJson(sb);
      if ((b.counters?.neighbors ?? "").match(/Established for \d+s, 1 prefix\(es\) received/g)?.length === 2) break;
      await sleep(300);
    } while (Date.now() < until);
    expect(b.spec).toMatchObject({ router_id: LINK.b, asn: "65002", neighbors: `${LINK.a} AS65001, ${LINK6.a} AS65001`, daemon: "running" });
    expect(b.counters[`session ${LINK.a}`]).toMatch(/^10\.94\.0\.1 AS65001: Established for \d+s, 1 prefix\(es\) received, 0 announced$/);
    expect(b.counters[`session ${LINK6.a}`]).toMatch(/^fd94::1 AS65001: Established for \d+s, 1 prefix\(es\) received, 0 announced$/);
    const a = await showJson(sa);
    expect(a.counters.neighbors).toMatch(/Established .*0 prefix\(es\) received, 1 announced/);
    const text = await sb.bolt(["show"], { env });
    expect(text.stdout).toMatch(
      /bgp "bird"[\s\S]*neighbors = 10\.94\.0\.1 AS65001, fd94::1 AS65001 {2}\[10\.94\.0\.1 AS65001: Established for \d+s, 1 prefix\(es\) received, 0 announced; fd94::1 AS65001: Established/,
    );
    expect(text.stdout + JSON.stringify(a)).not.toContain("md5-Secret-1");
  });

  it("a new announce list reconfigures in place: the old prefix is withdrawn from B's kernel, the session stays up", async () => {
    const up = await since(sb);
    expect(up).toBeTruthy();
    const r = await apply(sa, fileA({ boltNetworks: false, statics: [STATIC] }));
    expect(r.code, r.stderr).toBe(0);
    expect(await waitRoutes(sb.target, [`${STATIC} via ${LINK.a}`])).toEqual([`${STATIC} via ${LINK.a}`]);
    expect(await waitRoutes(sb.target, [], 10_000, birdRoutes6), "the switch off withdraws the IPv6 half too").toEqual([]);
    expect(await since(sb), "birdc configure kept the session").toBe(up);
    expect(await planExit(sa, fileA({ boltNetworks: false, statics: [STATIC] }))).toBe(0);
    expect(await planExit(sb, fileB())).toBe(0);
  });

  it("a filter BIRD refuses is a plan error at its Boltfile line; nothing is written", async () => {
    const conf = readFileSync(join(birdDir(sa.target), "bird.conf"), "utf8");
    const file = fileA({ boltNetworks: false, statics: [STATIC], importPatterns: ["10.0.0.0/8{30,20}"] });
    const r = await sa.bolt(["plan", "-f", file], { env });
    expect(r.code).not.toBe(0);
    const pos = posOf(readFileSync(file, "utf8"), "import = ");
    expect(r.stderr).toContain(`${file}:${pos.line}:`);
    expect(r.stderr).toMatch(/BIRD refuses the rendered config: Invalid prefix pattern range/);
    // bolt validate (offline) runs BIRD's parser too, with the same position.
    const v = await bolt(["validate", "-f", file]);
    expect(v.code).toBe(1);
    expect(v.stderr).toContain(`${file}:${pos.line}:`);
    expect(v.stderr).toMatch(/BIRD refuses the rendered config: Invalid prefix pattern range/);
    const a = await sa.bolt(["apply", "-f", file], { env });
    expect(a.code).not.toBe(0);
    expect(readFileSync(join(birdDir(sa.target), "bird.conf"), "utf8")).toBe(conf);
  });

  it("a failing birdc configure rolls back: the old file is back, bird still runs it, the change is still planned", async () => {
    // A birdc that refuses `configure` (every other command goes to the real one).
    const bin = join(sa.dir, "failbin");
    mkdirSync(bin, { recursive: true });
    const real = ["/usr/sbin/birdc", "/usr/bin/birdc"].find((p) => existsSync(p))!;
    writeFileSync(
      join(bin, "birdc"),
      `#!/bin/sh\nfor a in "$@"; do [ "$a" = configure ] && { echo "injected: reconfiguration refused" >&2; exit 1; }; done\nexec ${real} "$@"\n`,
    );
    chmodSync(join(bin, "birdc"), 0o755);
    const conf = readFileSync(join(birdDir(sa.target), "bird.conf"), "utf8");
    const file = fileA({ boltNetworks: true, statics: [STATIC] });
    const r = await apply(sa, file, { PATH: `${bin}:${process.env.PATH}` });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/injected: reconfiguration refused/);
    expect(r.stderr).toMatch(/rolled back|roll/i);
    expect(readFileSync(join(birdDir(sa.target), "bird.conf"), "utf8")).toBe(conf);
    expect(readFileSync(join(birdDir(sa.target), "loaded.conf"), "utf8")).toBe(conf);
    expect(await birdRoutes(sb.target)).toEqual([`${STATIC} via ${LINK.a}`]);
    expect(await planExit(sa, file)).toBe(2);
    expect(await planExit(sa, fileA({ boltNetworks: false, statics: [STATIC] }))).toBe(0);
  });

  it("a bird that died is seen from its pid file alone and started again by the next apply", async () => {
    const file = fileA({ boltNetworks: false, statics: [STATIC] });
    const pid = await pidFromFile(join(birdDir(sa.target), "bird.pid"));
    process.kill(pid, "SIGKILL");
    for (let i = 0; i < 50 && isBird(pid); i++) await sleep(50);
    const plan = await sa.bolt(["plan", "-f", file], { env });
    expect(plan.stdout).toMatch(/~ bgp "bird"[\s\S]*daemon += "stopped" -> "running"/);
    const r = await apply(sa, file);
    expect(r.code, r.stderr).toBe(0);
    expect(await pidFromFile(join(birdDir(sa.target), "bird.pid"))).not.toBe(pid);
    expect(await waitRoutes(sb.target, [`${STATIC} via ${LINK.a}`])).toEqual([`${STATIC} via ${LINK.a}`]);
    expect(await planExit(sa, file)).toBe(0);
  });

  it("a destroy that fails after bird stopped rolls back: bird runs its config again and B relearns the route", async () => {
    const file = fileA({ boltNetworks: false, statics: [STATIC] });
    const pid = await pidFromFile(join(birdDir(sa.target), "bird.pid"));
    const loaded = readFileSync(join(birdDir(sa.target), "loaded.conf"), "utf8");
    const hit = join(sa.dir, "destroy-fault-hit");
    // The bridge's deletion fails: it runs after bird was stopped and its files removed.
    const r = await sa.bolt(["destroy", "-f", file], { env: { ...env, ...sa.fakeEnv(["ip"], { BOLT_FAULT_PATTERN: "link del", BOLT_FAULT_HIT: hit }) } });
    expect(existsSync(hit), "the fault was injected").toBe(true);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/rolled back/i);
    expect(isBird(pid)).toBe(false);
    const again = await pidFromFile(join(birdDir(sa.target), "bird.pid"));
    expect(isBird(again)).toBe(true);
    expect(readFileSync(join(birdDir(sa.target), "loaded.conf"), "utf8")).toBe(loaded);
    expect(await waitRoutes(sb.target, [`${STATIC} via ${LINK.a}`])).toEqual([`${STATIC} via ${LINK.a}`]);
    expect(await planExit(sa, file)).toBe(0);
  });

  it("destroy stops bolt's birds, B's kernel loses the routes, both namespaces are as before; the foreign bird lives", async () => {
    const pids = [await pidFromFile(join(birdDir(sa.target), "bird.pid")), await pidFromFile(join(birdDir(sb.target), "bird.pid"))];
    const da = await sa.bolt(["destroy", "-f", fileA({ boltNetworks: false, statics: [STATIC] })], { env });
    expect(da.code, da.stderr).toBe(0);
    expect(await waitRoutes(sb.target, [], 10_000)).toEqual([]);
    const db = await sb.bolt(["destroy", "-f", fileB()], { env });
    expect(db.code, db.stderr).toBe(0);
    for (const p of pids) expect(isBird(p), `bird ${p} stopped`).toBe(false);
    expect(existsSync(birdDir(sa.target))).toBe(false);
    expect(existsSync(birdDir(sb.target))).toBe(false);
    expect(isBird(foreignPid), "a bird bolt did not start is never touched").toBe(true);
    expect(await snapshot(sa.target)).toEqual(before.get(sa.target));
    expect(await snapshot(sb.target)).toEqual(before.get(sb.target));
    expect(await planExit(sb, fileB())).toBe(2);
  });

  it("TCP 179 held by a process bolt did not start is a plan error; nothing is started", async () => {
    const nc = execa("ip", ["netns", "exec", sb.target, "nc", "-l", "179"], { reject: false });
    try {
      for (let i = 0; i < 50 && !(await must(["ip", "netns", "exec", sb.target, "ss", "-H", "-l", "-t", "-n", "sport", "=", ":179"])).trim(); i++)
        await sleep(100);
      const r = await sb.bolt(["plan", "-f", fileB()], { env });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(
        new RegExp(`b\\.toml:1:1: error: TCP port 179 \\(BGP\\) in netns ${sb.target} is held by nc \\(pid ${nc.pid}\\), which bolt did not start`),
      );
      expect(existsSync(birdDir(sb.target))).toBe(false);
    } finally {
      nc.kill("SIGTERM");
      await nc;
    }
  });
});

async function pidFromFile(f: string): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const n = existsSync(f) ? Number(readFileSync(f, "utf8").trim()) : 0;
    if (n > 0) return n;
    await sleep(50);
  }
  throw new Error(`no pid in ${f}`);
}

function isBird(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "bird";
  } catch {
    return false;
  }
}
