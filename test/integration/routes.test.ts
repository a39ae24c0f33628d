// Static routes proven by traffic: the target reaches a subnet behind a router namespace only
// through bolt's route; ECMP over two links carries flows on both (L4 hash); a blackhole route
// drops; IPv6 too; a next hop outside every connected subnet and a foreign route with the same
// key are plan-time errors; re-plan empty; destroy leaves the namespace as it was (a foreign
// route and a foreign rule inside bolt's priority band included), and no bird is ever started.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SKIP_REASON, Sandbox, ipJson, must, ping, posOf, requireBuild, run, snapshot } from "./harness.js";
import type { Json, Snapshot } from "./harness.js";
import { applyConverged } from "./nft-topology.js";

const routes = (body: string) => `[sysctl]\n"net.ipv4.fib_multipath_hash_policy" = 1\n\n${body}`;
const FAR = `
[[routing.routes]]
destination = "10.80.0.0/24"
gateway = "10.0.1.2"

[[routing.routes]]
destination = "fd80::/64"
gateway = "fd01::2"
`;
const ECMP = `
[[routing.routes]]
destination = "10.80.0.0/24"
nexthops = [{ gateway = "10.0.1.2" }, { gateway = "10.0.2.2" }]

[[routing.routes]]
destination = "10.82.0.0/24"
type = "blackhole"
`;

describe.skipIf(!!SKIP_REASON)("static routes", () => {
  const sb = new Sandbox();
  let router: string;
  let before: Snapshot;
  const tx = async (dev: string) => ((await ipJson(sb.target, ["-s", "link", "show", "dev", dev])) as Json[])[0].stats64.tx.packets as number;
  /** Ten datagrams to 10.80.0.1:PORT (sent as UID when given): how many left through r1 and r2. */
  const send = async (port: number, uid?: number) => {
    const [a0, b0] = [await tx("r1"), await tx("r2")];
    // Each handed to the kernel before the next (dgram's send callback).
    const script = `${uid === undefined ? "" : `process.setuid(${uid});`}const s=require("dgram").createSocket("udp4");let n=0;const go=()=>{if(n++>=10)return s.close();s.send("x",${port},"10.80.0.1",go)};go()`;
    await must(["ip", "netns", "exec", sb.target, process.execPath, "-e", script]);
    await new Promise((r) => setTimeout(r, 300));
    return [(await tx("r1")) - a0, (await tx("r2")) - b0];
  };

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    router = await sb.addNetns("router");
    for (const [i, dev] of [
      [1, "r1"],
      [2, "r2"],
    ] as const) {
      await must(["ip", "-n", sb.target, "link", "add", dev, "type", "veth", "peer", "name", `e${i}`, "netns", router]);
      await must(["ip", "-n", sb.target, "address", "add", `10.0.${i}.1/30`, "dev", dev]);
      await must(["ip", "-n", router, "address", "add", `10.0.${i}.2/30`, "dev", `e${i}`]);
      await must(["ip", "-n", sb.target, "link", "set", dev, "up"]);
      await must(["ip", "-n", router, "link", "set", `e${i}`, "up"]);
    }
    await must(["ip", "-n", sb.target, "address", "add", "fd01::1/64", "dev", "r1", "nodad"]);
    await must(["ip", "-n", router, "address", "add", "fd01::2/64", "dev", "e1", "nodad"]);
    // The far side: addresses on the router's lo, which the target has no route to.
    await must(["ip", "-n", router, "address", "add", "10.80.0.1/32", "dev", "lo"]);
    await must(["ip", "-n", router, "address", "add", "10.82.0.1/32", "dev", "lo"]);
    await must(["ip", "-n", router, "address", "add", "fd80::1/128", "dev", "lo"]);
    for (const ns of [sb.target, router]) await must(["ip", "-n", ns, "link", "set", "lo", "up"]);
    // Somebody else's route and a rule of theirs at a priority inside bolt's band (the one
    // bolt's first normal policy takes): both must outlive every apply and the destroy.
    await must(["ip", "-n", sb.target, "route", "add", "10.99.0.0/24", "via", "10.0.1.2", "proto", "static"]);
    await must(["ip", "-n", sb.target, "rule", "add", "priority", "23000", "from", "10.99.0.0/24", "lookup", "main", "proto", "static"]);
    before = await snapshot(sb.target);
  });
  afterAll(() => sb.cleanup());

  it("a subnet behind a router is reachable only through bolt's route (both families)", async () => {
    expect(await ping(sb.target, "10.80.0.1")).toBe(false);
    await applyConverged(sb, [sb.write("far.toml", routes(FAR))]);
    expect(await ping(sb.target, "10.80.0.1")).toBe(true);
    expect(await ping(sb.target, "fd80::1")).toBe(true);
    const r = ((await ipJson(sb.target, ["route", "show", "10.80.0.0/24"])) as Json[])[0];
    expect(r).toMatchObject({ gateway: "10.0.1.2", dev: "r1", protocol: "176" });
  });

  it("ECMP: flows spread over both next hops; a blackhole route drops", async () => {
    await applyConverged(sb, [sb.write("ecmp.toml", routes(ECMP))]);
    const [a0, b0] = [await tx("r1"), await tx("r2")];
    // 32 UDP flows (distinct source ports): with the L4 hash both links carry some.
    for (let p = 40000; p < 40032; p++) await run(["ip", "netns", "exec", sb.target, "nc", "-u", "-w", "0", "-p", String(p), "10.80.0.1", "9"], "x\n");
    const [a1, b1] = [await tx("r1"), await tx("r2")];
    expect(a1 - a0, "flows on r1").toBeGreaterThan(0);
    expect(b1 - b0, "flows on r2").toBeGreaterThan(0);
    expect(await ping(sb.target, "10.82.0.1")).toBe(false);
    const bh = ((await ipJson(sb.target, ["route", "show", "10.82.0.0/24"])) as Json[])[0];
    expect(bh.type).toBe("blackhole");
  });

  it("a routing policy: marked traffic (udp dport 5000) takes its own table's route, the rest the main table's", async () => {
    const policy = `${FAR}
[[routing.policies]]
name = "game"
protocol = "udp"
dest_ports = "5000"
destination = "10.80.0.0/24"
gateway = "10.0.2.2"
priority = "high"
`;
    await applyConverged(sb, [sb.write("policy.toml", routes(policy))]);
    // Both next hops resolved first (a packet waiting for ARP would be counted late).
    for (const hop of ["10.0.1.2", "10.0.2.2"]) expect(await ping(sb.target, hop)).toBe(true);
    const [gameR1, gameR2] = await send(5000);
    expect(gameR2, "the policy's packets leave through r2").toBeGreaterThanOrEqual(10);
    expect(gameR1, "none of them through r1 (a neighbour probe at most)").toBeLessThanOrEqual(2);
    const [otherR1, otherR2] = await send(6000);
    expect(otherR1, "other traffic stays on the main table's route via r1").toBeGreaterThanOrEqual(10);
    expect(otherR2).toBeLessThanOrEqual(2);
    const rules = (await ipJson(sb.target, ["rule", "show"])) as Json[];
    expect(rules.find((r) => r.priority === 22000)).toMatchObject({ fwmark: "0xc000001", fwmask: "0xf000fff", table: "20200", protocol: "176" });
  });

  it("ip rule selectors (iif, uidrange): the host's own traffic of one user takes its table, no nft mark", async () => {
    const policy = `${FAR}
[[routing.policies]]
name = "nobody"
iif = "lo"
uidrange = "65534"
gateway = "10.0.2.2"
`;
    await applyConverged(sb, [sb.write("uid.toml", routes(policy))]);
    for (const hop of ["10.0.1.2", "10.0.2.2"]) expect(await ping(sb.target, hop)).toBe(true);
    const [nobodyR1, nobodyR2] = await send(6000, 65534);
    expect(nobodyR2, "uid 65534's packets leave through r2").toBeGreaterThanOrEqual(10);
    expect(nobodyR1).toBeLessThanOrEqual(2);
    const [rootR1, rootR2] = await send(6000);
    expect(rootR1, "root's packets stay on the main table's route via r1").toBeGreaterThanOrEqual(10);
    expect(rootR2).toBeLessThanOrEqual(2);
    const rules = (await ipJson(sb.target, ["rule", "show"])) as Json[];
    expect(rules.find((r) => r.priority === 23000 && r.protocol === "176")).toMatchObject({
      iif: "lo",
      uid_start: 65534,
      uid_end: 65534,
      table: "20200",
      protocol: "176",
    });
    expect(rules.find((r) => r.priority === 23000 && r.protocol === "176").fwmark).toBeUndefined();
    // Nothing for nft to mark: no policy rule in bolt's table.
    const nft = await run(["ip", "netns", "exec", sb.target, "nft", "list", "ruleset"]);
    expect(nft.stdout).not.toMatch(/meta mark set/);
  });

  it("a named table: bolt numbers it in its rt_tables.d file, routes and rules use the name; a name another file defines is refused", async () => {
    const name = `g${sb.id}`;
    const file = `/etc/iproute2/rt_tables.d/bolt-${sb.target}.conf`;
    const policy = `${FAR}
[[routing.policies]]
name = "nobody"
uidrange = "65534"
gateway = "10.0.2.2"
table = "${name}"
`;
    const named = sb.write("named.toml", routes(policy));
    // A route batch failing after bolt wrote its rt_tables.d file: the rollback removes the file
    // again, and the namespace is as the previous apply left it.
    const was = await snapshot(sb.target);
    const fault = sb.fakeEnv(["ip"], { BOLT_FAULT_PATTERN: `table ${name}`, BOLT_FAULT_HIT: join(sb.dir, "fault-named.hit") });
    const failed = await sb.bolt(["apply", "-f", named], { env: fault });
    expect(failed.code, failed.stderr).toBe(1);
    expect(existsSync(join(sb.dir, "fault-named.hit")), "the fault was injected").toBe(true);
    expect(existsSync(file), "the rollback removed bolt's rt_tables.d file").toBe(false);
    expect(await snapshot(sb.target)).toEqual(was);
    await applyConverged(sb, [named]);
    expect(readFileSync(file, "utf8")).toMatch(new RegExp(`^212\\d\\d\\t${name}$`, "m"));
    // ip itself resolves the name: the policy's default route is in that table.
    expect((await ipJson(sb.target, ["route", "show", "table", name])) as Json[]).toMatchObject([{ dst: "default", gateway: "10.0.2.2", protocol: "176" }]);
    expect(((await ipJson(sb.target, ["rule", "show"])) as Json[]).find((r) => r.priority === 23000 && r.protocol === "176")).toMatchObject({
      uid_start: 65534,
      table: name,
    });
    for (const hop of ["10.0.1.2", "10.0.2.2"]) expect(await ping(sb.target, hop)).toBe(true);
    const [r1, r2] = await send(6000, 65534);
    expect(r2, "uid 65534's packets leave through the named table's route via r2").toBeGreaterThanOrEqual(10);
    expect(r1).toBeLessThanOrEqual(2);

    // Somebody else's rt_tables file names a table: using that name is an error at the config line.
    const theirs = `/etc/iproute2/rt_tables.d/${sb.target}-theirs.conf`;
    writeFileSync(theirs, `300 c${sb.id}\n`);
    try {
      const text = routes(`[[routing.routes]]\ndestination = "10.93.0.0/24"\ngateway = "10.0.1.2"\ntable = "c${sb.id}"\n`);
      const r = await sb.bolt(["plan", "-f", sb.write("clash-name.toml", text)]);
      expect(r.code).toBe(1);
      const at = posOf(text, `"c${sb.id}"`);
      expect(r.stderr).toContain(`clash-name.toml:${at.line}:${at.col}: error: table "c${sb.id}" is already named in ${theirs} (table 300)`);
    } finally {
      rmSync(theirs, { force: true });
    }
  });

  it("a next hop nobody is connected to and a foreign route with the same key are refused at plan time", async () => {
    const bad = sb.write("bad.toml", routes('[[routing.routes]]\ndestination = "10.90.0.0/24"\ngateway = "10.9.9.9"\n'));
    const r = await sb.bolt(["plan", "-f", bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.toml:6:11: error: route 10\.90\.0\.0\/24: next hop 10\.9\.9\.9 is outside every subnet the target is connected to/);
    await must(["ip", "-n", sb.target, "route", "add", "10.91.0.0/24", "via", "10.0.2.2"]);
    const clash = sb.write("clash.toml", routes('[[routing.routes]]\ndestination = "10.91.0.0/24"\ngateway = "10.0.1.2"\n'));
    const c = await sb.bolt(["plan", "-f", clash]);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/route 10\.91\.0\.0\/24 \(table main\) already exists and is not bolt's/);
    await must(["ip", "-n", sb.target, "route", "del", "10.91.0.0/24"]);
  });

  it("destroy leaves the namespace as it was", async () => {
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(await snapshot(sb.target)).toEqual(before);
    expect(existsSync(`/etc/iproute2/rt_tables.d/bolt-${sb.target}.conf`), "bolt's rt_tables.d file is gone").toBe(false);
    // The foreign route and rule are in `before`; and no BGP was asked for: no bird ever ran here.
    expect((await ipJson(sb.target, ["rule", "show"])) as Json[]).toContainEqual(
      expect.objectContaining({ priority: 23000, src: "10.99.0.0", protocol: "static" }),
    );
    const pids = (await run(["ip", "netns", "pids", sb.target])).stdout.split("\n").filter(Boolean);
    expect(pids.filter((p) => existsSync(`/proc/${p}/comm`) && readFileSync(`/proc/${p}/comm`, "utf8").trim() === "bird")).toEqual([]);
  });
});
