// networks.*.dhcp (issue 15): bolt's own dnsmasq on the bridge hands a VM exactly the lease bolt
// recorded for its tap endpoint. The VM is stood in for by a namespace holding a veth whose host
// end is enslaved to the bridge beside the tap (a tap's far side is a file descriptor only a VM
// process holds; the bridge forwards between its ports alike, so a veth port carrying the VM's MAC
// is what the DHCP server sees of a VM), and udhcpc runs in it. A second VM is a SIGHUP of the
// same dnsmasq; a foreign dnsmasq on the bridge is a plan-time conflict; destroy stops bolt's
// (never the foreign one) and removes its files; bad input is an error at file:line:col.
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, bolt, must, ping, posOf, requireBuild, run, Sandbox } from "./harness.js";
import type { Json } from "./harness.js";

const HAS_TOOLS = !!SKIP_REASON || (existsSync("/usr/sbin/dnsmasq") && existsSync("/usr/sbin/udhcpc"));
const LAN = { subnet: "10.97.0.0/24", gateway: "10.97.0.1", dns: "10.97.0.53" } as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!!SKIP_REASON || !HAS_TOOLS)("networks.*.dhcp: bolt's own dnsmasq serves the VMs' leases", () => {
  const s = new Sandbox();
  const savedRunDir = process.env.BOLT_RUN_DIR;
  const started: number[] = [];
  const runDir = () => join(s.dir, "run");
  const dir = () => join(runDir(), "dnsmasq", `netns-${s.target}`, "lan");
  const pidOf = () => Number(readFileSync(join(dir(), "dnsmasq.pid"), "utf8").trim());

  beforeAll(async () => {
    requireBuild();
    await s.addNetns();
    // Every bolt this test runs (the harness's plan helpers too) keeps its run dir in the sandbox.
    process.env.BOLT_RUN_DIR = runDir();
    // udhcpc hands its lease to a script: this one records what it was given and configures eth0 with it.
    const script = s.write(
      "udhcpc.sh",
      [
        "#!/bin/sh",
        '[ "$1" = bound ] || exit 0',
        'echo "ip=$ip mask=$mask router=$router dns=$dns" > "$LEASE_OUT"',
        'ip address add "$ip/$mask" dev "$interface"',
        "",
      ].join("\n"),
    );
    chmodSync(script, 0o755);
  });
  afterAll(async () => {
    // Only processes this test started, by pid: bolt's dnsmasq (if a test failed before destroy) and the foreign one.
    const own = existsSync(join(dir(), "dnsmasq.pid")) ? pidOf() : 0;
    for (const pid of [own, ...started]) if (pid && alive(pid)) process.kill(pid, "SIGTERM");
    await sleep(200);
    await s.cleanup();
    if (savedRunDir === undefined) delete process.env.BOLT_RUN_DIR;
    else process.env.BOLT_RUN_DIR = savedRunDir;
  });

  const file = (vms: string[], extra: string[] = []) =>
    s.write(
      "lan.toml",
      [
        "[networks.lan]",
        `subnet = "${LAN.subnet}"`,
        "dhcp = true",
        `dns = ["${LAN.dns}"]`,
        ...extra,
        "",
        ...vms.flatMap((v) => ["[[endpoints]]", `name = "${v}"`, 'network = "lan"', "tap = true", ""]),
      ].join("\n"),
    );

  const apply = async (f: string) => {
    const r = await s.bolt(["apply", "-f", f]);
    expect(r.code, r.stderr).toBe(0);
    const again = await s.planExit(f, []);
    expect(again.code, again.stdout + again.stderr).toBe(0);
  };

  const showJson = async (): Promise<Json[]> => {
    const r = await s.bolt(["show", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout).resources;
  };

  /** The MAC bolt serves a VM, from `bolt show` (the way a VM runner learns it), and its leased address. */
  const leaseOf = async (vm: string) => {
    const res = await showJson();
    const ip = res.find((r) => r.address === `endpoint:${vm}`).spec.ip.split("/")[0];
    const hosts: string = res.find((r) => r.address === "dhcp:lan").counters.hosts;
    const mac = new RegExp(`(?:^|, )${vm} ([0-9a-f:]{17})=${ip.replace(/\./g, "\\.")}(?:,|$)`).exec(hosts)?.[1];
    expect(mac, hosts).toBeDefined();
    return { ip, mac: mac! };
  };

  /** A namespace standing in for the VM: eth0 with the VM's MAC, its peer on the bridge; udhcpc asks for a lease. */
  const vmAsks = async (vm: string, mac: string) => {
    const ns = await s.addNetns(vm);
    const host = `vmh-${vm}`;
    await must(["ip", "link", "add", host, "netns", s.target, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    await must(["ip", "-n", ns, "link", "set", "eth0", "address", mac, "up"]);
    await must(["ip", "-n", s.target, "link", "set", host, "master", "bolt-lan", "up"]);
    const out = join(s.dir, `${vm}.lease`);
    const r = await run([
      "env",
      `LEASE_OUT=${out}`,
      "ip",
      "netns",
      "exec",
      ns,
      "udhcpc",
      "-i",
      "eth0",
      "-n",
      "-q",
      "-f",
      "-t",
      "5",
      "-T",
      "1",
      "-s",
      join(s.dir, "udhcpc.sh"),
    ]);
    expect(r.code, r.stderr).toBe(0);
    return { ns, lease: readFileSync(out, "utf8").trim() };
  };

  it("a tap endpoint's VM gets exactly bolt's lease, the gateway as router and the network's nameserver", async () => {
    await apply(file(["vm1"]));
    const { ip, mac } = await leaseOf("vm1");
    expect(mac).toMatch(/^02:/);
    const { ns, lease } = await vmAsks("vm1", mac);
    expect(lease).toBe(`ip=${ip} mask=24 router=${LAN.gateway} dns=${LAN.dns}`);
    expect(await ping(ns, LAN.gateway)).toBe(true);
    const leases = readFileSync(join(dir(), "leases"), "utf8");
    expect(leases).toContain(` ${mac} ${ip} `);
  });

  it("a second VM is a reload of the same dnsmasq, and its lease is served", async () => {
    const pid = pidOf();
    const f = file(["vm1", "vm2"]);
    const planned = await s.planned(f);
    expect(planned).toContain("update dhcp:lan");
    await apply(f);
    expect(pidOf()).toBe(pid);
    expect(alive(pid)).toBe(true);
    const { ip, mac } = await leaseOf("vm2");
    const { lease } = await vmAsks("vm2", mac);
    expect(lease).toBe(`ip=${ip} mask=24 router=${LAN.gateway} dns=${LAN.dns}`);
  });

  it("a changed lease time restarts it; the hosts stay", async () => {
    const pid = pidOf();
    await apply(file(["vm1", "vm2"], ['dhcp_lease_time = "1h"']));
    expect(alive(pid)).toBe(false);
    expect(readFileSync(join(dir(), "dnsmasq.conf"), "utf8")).toMatch(/^dhcp-range=10\.97\.0\.0,static,255\.255\.255\.0,3600$/m);
    expect(readFileSync(join(dir(), "hosts"), "utf8").match(/^02:/gm)).toHaveLength(2);
  });

  it("a dnsmasq bolt did not start on the bridge is a plan-time conflict, and outlives destroy", async () => {
    const f = file(["vm1", "vm2"], ['dhcp_lease_time = "1h"']);
    const pidFile = join(s.dir, "foreign.pid");
    await must([
      "ip",
      "netns",
      "exec",
      s.target,
      "dnsmasq",
      "--conf-file=/dev/null",
      `--pid-file=${pidFile}`,
      "--interface=bolt-lan",
      "--bind-interfaces",
      "--port=0",
      "--dhcp-range=10.97.0.200,10.97.0.210,1h",
      `--dhcp-leasefile=${join(s.dir, "foreign.leases")}`,
    ]);
    const foreign = Number(readFileSync(pidFile, "utf8").trim());
    started.push(foreign);
    const r = await s.planExit(f, []);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`held by dnsmasq (pid ${foreign})`);
    expect(r.stderr).toContain(`${f}:${posOf(readFileSync(f, "utf8"), "dhcp = true").line}:`);

    const own = pidOf();
    const d = await s.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    await sleep(100);
    expect(alive(own)).toBe(false);
    expect(existsSync(join(runDir(), "dnsmasq", `netns-${s.target}`))).toBe(false);
    expect(alive(foreign)).toBe(true);
    process.kill(foreign, "SIGTERM");
  });

  it.each([
    ['dhcp_lease_time = "30s"', "dhcp_lease_time", /shorter than 2m/],
    ['dhcp_lease_time = "soon"', "dhcp_lease_time", /is not a duration/],
  ])("bad input: %s is an error at its position", async (line, needle, message) => {
    const f = file(["vm1"], [line]);
    const r = await bolt(["validate", "-f", f]);
    expect(r.code).toBe(1);
    const pos = posOf(readFileSync(f, "utf8"), needle);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain(`${f}:${pos.line}:`);
  });

  it("bad input: a lease time without dhcp, and dhcp on a vsock (bridgeless) Volant host", async () => {
    const f = s.write("nodhcp.toml", ["[networks.lan]", `subnet = "${LAN.subnet}"`, 'dhcp_lease_time = "1h"', ""].join("\n"));
    const r = await bolt(["validate", "-f", f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${f}:3:`);
    expect(r.stderr).toMatch(/dhcp_lease_time is set but dhcp is not/);
    const y = s.write("volantd.yaml", ["networking:", "  mode: vsock", "  bridge:", "    dhcp:", "      enabled: true", ""].join("\n"));
    const v = await bolt(["validate", "-f", y]);
    expect(v.code).toBe(1);
    expect(v.stderr).toContain(`${y}:5:`);
    expect(v.stderr).toMatch(/has no bridge and no taps/);
  });
});
