// bolt-cni (src/cni) called as a runtime calls it: CNI_* variables and the network config on
// stdin, the result or the CNI error document on stdout. The bolt network lives in the
// sandbox's target namespace ("netns" in the CNI config); stand-in containers are namespaces
// the test makes — named ones (/run/netns/NAME) and unnamed ones held by a process the test
// starts (/proc/PID/ns/net). Without a daemon (the plugin applies itself) and through a
// `bolt watch` daemon's API; then `portmap` chained after bolt-cni maps a port in the target.
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import type { ResultPromise } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiRequest } from "../../src/daemon/socket.js";
import { readRuntimeEndpoints } from "../../src/daemon/runtime-endpoints.js";
import { StateStore } from "../../src/state/store.js";
import { REPO, Sandbox, SKIP_REASON, ipJson, listening, must, netnsList, ping, requireBuild, run, snapshot } from "./harness.js";
import type { Json } from "./harness.js";
import { waitFor } from "./watch-helpers.js";

const CNI_BIN = join(REPO, "bin", "bolt-cni");
const PORTMAP = "/usr/lib/cni/portmap";
const boltfile = `
[networks.gaming-net]
subnet = "10.93.0.0/24"

[networks.db-net]
subnet = "10.94.0.0/24"
internet = false
dns = ["10.94.0.53"]
search = ["db.internal"]
`;

interface CniOut {
  code: number;
  json: Json;
  stdout: string;
  stderr: string;
}

/** A runtime's call: argv-free, everything in the environment and on stdin. */
async function cniCall(bin: string[], cmd: string, env: Record<string, string>, config: unknown): Promise<CniOut> {
  const r = await execa(bin[0]!, bin.slice(1), { input: JSON.stringify(config), env: { CNI_COMMAND: cmd, CNI_PATH: "/usr/lib/cni", ...env }, reject: false });
  const stdout = String(r.stdout);
  return { code: r.exitCode ?? -1, stdout, stderr: String(r.stderr), json: stdout.trim() ? JSON.parse(stdout) : undefined };
}

const inSubnet = (cidr: string) => /^10\.93\.0\.(\d+)\/24$/.test(cidr) && Number(cidr.split(".")[3]!.split("/")[0]) > 1;

describe.skipIf(!!SKIP_REASON)("bolt-cni", () => {
  const sb = new Sandbox();
  const procs: ResultPromise[] = [];
  let file: string;
  let conf: Record<string, unknown>;
  let baseEnv: Record<string, string>;
  /** container id → its netns path and (named ones) name */
  const containers: { id: string; path: string; name?: string; pid?: number }[] = [];
  const results = new Map<string, Json>();

  /** As a runtime finds a plugin: the executable the config's "type" names, on CNI_PATH (scripts/install-cni.sh links it so). */
  const pluginDir = () => join(sb.dir, "cni-bin");
  const cni = (cmd: string, c: { id: string; path: string }, config: unknown = conf, env: Record<string, string> = {}) =>
    cniCall(
      [join(pluginDir(), "bolt")],
      cmd,
      { ...baseEnv, CNI_PATH: `${pluginDir()}:/usr/lib/cni`, CNI_CONTAINERID: c.id, CNI_NETNS: c.path, CNI_IFNAME: "eth0", ...env },
      config,
    );

  /** A namespace with no name, held only by a process this test started (killed by its PID). */
  const unnamedNetns = async (): Promise<{ path: string; pid: number }> => {
    const p = execa("unshare", ["--net", "sleep", "600"], { reject: false });
    procs.push(p);
    const pid = p.pid!;
    const own = await must(["readlink", "/proc/self/ns/net"]);
    await waitFor("the stand-in's own namespace", async () => (await run(["readlink", `/proc/${pid}/ns/net`])).stdout.trim() !== own.trim() || undefined);
    return { path: `/proc/${pid}/ns/net`, pid };
  };

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    file = sb.write("bolt-network.toml", boltfile);
    mkdirSync(pluginDir());
    symlinkSync(CNI_BIN, join(pluginDir(), "bolt"));
    const a = await sb.bolt(["apply", "-f", file]);
    expect(a.code, a.stderr).toBe(0);
    conf = { cniVersion: "1.0.0", name: "gaming", type: "bolt", network: "gaming-net", netns: sb.target, stateDir: sb.stateDir };
    // The namespace names bolt gives the attachments start with the sandbox's prefix: the teardown removes them.
    baseEnv = { BOLT_NETNS_PREFIX: sb.prefix, BOLT_RUN_DIR: join(sb.dir, "run") };
    for (let i = 0; i < 20; i++) {
      if (i < 14) containers.push({ id: `ctr-${i}`, name: await sb.addNetns(`ct${i}`), path: `/run/netns/${sb.prefix}ct${i}` });
      else containers.push({ id: `ctr-${i}`, ...(await unnamedNetns()) });
    }
  });
  afterAll(async () => {
    for (const p of procs) if (p.pid !== undefined && p.exitCode === undefined) process.kill(p.pid, "SIGKILL");
    await sb.cleanup();
  });

  it("VERSION lists the versions it speaks", async () => {
    const r = await cniCall([CNI_BIN], "VERSION", {}, { cniVersion: "1.0.0" });
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: "1.0.0", supportedVersions: ["0.4.0", "1.0.0"] });
  });

  it("bad input: a CNI error document on stdout, a non-zero exit, nothing touched", async () => {
    const c = containers[0]!;
    const before = { target: await snapshot(sb.target), inside: await snapshot(c.name!), netns: await netnsList() };
    const cases: [string, unknown, Record<string, string>, number, RegExp][] = [
      ["unknown network", { ...conf, network: "no-such-net" }, {}, 7, /"network" no-such-net is not a bolt network.*defined networks: gaming-net/s],
      ["unsupported version", { ...conf, cniVersion: "0.3.1" }, {}, 1, /cniVersion 0\.3\.1 is not supported/],
      ["an ipam section", { ...conf, ipam: { type: "host-local" } }, {}, 2, /"ipam"/],
      ["no network key", { ...conf, network: undefined }, {}, 7, /"network" is required/],
      ["a target that does not exist", { ...conf, netns: `${sb.prefix}missing` }, {}, 7, /no such network namespace/],
      ["no container id", conf, { CNI_CONTAINERID: "" }, 4, /CNI_CONTAINERID is not set/],
      ["CNI_NETNS not a namespace", conf, { CNI_NETNS: file }, 4, /not a namespace file/],
      ["CNI_NETNS missing", conf, { CNI_NETNS: "/proc/999999999/ns/net" }, 4, /ENOENT/],
    ];
    for (const [what, config, env, code, msg] of cases) {
      const r = await cni("ADD", c, config, env);
      expect(r.code, what).not.toBe(0);
      expect(r.json, what).toMatchObject({ cniVersion: expect.any(String), code });
      expect(`${r.json.msg}\n${r.json.details ?? ""}`, what).toMatch(msg);
    }
    const notJson = await execa(CNI_BIN, [], { input: "{not json", env: { ...baseEnv, CNI_COMMAND: "ADD" }, reject: false });
    expect(notJson.exitCode).not.toBe(0);
    expect(JSON.parse(String(notJson.stdout)).code).toBe(6);
    expect(await snapshot(sb.target)).toEqual(before.target);
    expect(await snapshot(c.name!)).toEqual(before.inside);
    expect(await netnsList()).toEqual(before.netns);
    expect(readRuntimeEndpoints(sb.stateDir, sb.target)).toEqual([]);
  });

  it("ADD of 20 containers at once: results from the bolt network's pool, runtime endpoints with leases", async () => {
    const t0 = performance.now();
    const outs = await Promise.all(containers.map((c) => cni("ADD", c)));
    console.log(`[cni] 20 parallel ADDs without a daemon: ${Math.round(performance.now() - t0)} ms`);
    outs.forEach((r, i) => {
      expect(r.code, `${containers[i]!.id}: ${r.stdout} ${r.stderr}`).toBe(0);
      results.set(containers[i]!.id, r.json);
    });
    const addrs = new Set<string>();
    for (const c of containers) {
      const res = results.get(c.id);
      expect(res.cniVersion).toBe("1.0.0");
      expect(res.interfaces).toHaveLength(2);
      expect(res.interfaces[1]).toMatchObject({ name: "eth0", sandbox: c.path });
      expect(res.ips).toHaveLength(1);
      expect(res.ips[0]).toMatchObject({ gateway: "10.93.0.1", interface: 1 });
      expect(inSubnet(res.ips[0].address), res.ips[0].address).toBe(true);
      expect(res.routes).toEqual([{ dst: "0.0.0.0/0", gw: "10.93.0.1" }]);
      addrs.add(res.ips[0].address);
      // The result is the kernel's: the container's eth0 has that MAC and address, the host veth is on the bridge.
      const inside = (await execa("nsenter", [`--net=${c.path}`, "ip", "-j", "addr", "show", "dev", "eth0"])).stdout;
      const eth0 = JSON.parse(inside)[0];
      expect(eth0.address).toBe(res.interfaces[1].mac);
      expect(eth0.addr_info.map((x: Json) => `${x.local}/${x.prefixlen}`)).toContain(res.ips[0].address);
      const host = (await ipJson(sb.target, ["-d", "link", "show", "dev", res.interfaces[0].name]))[0];
      expect(host.master).toBe("bolt-gaming-net");
      expect(host.address).toBe(res.interfaces[0].mac);
      expect(host.ifalias).toMatch(/^bolt1,ep=cni-[0-9a-f]{12},/);
    }
    expect(addrs.size).toBe(20);
    // Each attachment is a runtime endpoint of the target, its address leased in bolt's store.
    const recorded = readRuntimeEndpoints(sb.stateDir, sb.target);
    expect(recorded).toHaveLength(20);
    const store = StateStore.openReadOnly(sb.stateDir);
    const leases = store.leases(sb.target);
    store.close();
    expect(new Set(recorded.map((e) => `${leases.get(e.name)}/24`))).toEqual(addrs);
    // bolt's own plan agrees: nothing to do (the attachments are part of the intent).
    expect((await sb.planExit(file)).code).toBe(0);
  });

  it("containers reach each other and the gateway", async () => {
    const [a, b] = [containers[0]!, containers[1]!];
    const ipOf = (c: { id: string }) => results.get(c.id).ips[0].address.split("/")[0];
    expect(await ping(a.name!, ipOf(b))).toBe(true);
    expect(await ping(b.name!, "10.93.0.1")).toBe(true);
    const unnamed = containers[19]!;
    const r = await run(["nsenter", `--net=${unnamed.path}`, "ping", "-n", "-c", "1", "-W", "2", ipOf(a)]);
    expect(r.code, r.stdout).toBe(0);
  });

  it("CHECK passes for every container, and fails when the inside drifted", async () => {
    const outs = await Promise.all(containers.map((c) => cni("CHECK", c, { ...conf, prevResult: results.get(c.id) })));
    outs.forEach((r, i) => expect(r.code, `${containers[i]!.id}: ${r.stdout}`).toBe(0));
    const c = containers[2]!;
    await must(["ip", "-n", c.name!, "route", "del", "default"]);
    const drift = await cni("CHECK", c, { ...conf, prevResult: results.get(c.id) });
    expect(drift.code).not.toBe(0);
    expect(drift.json).toMatchObject({ code: 101, msg: expect.stringContaining('gateway inside is "", bolt set "10.93.0.1"') });
    const unknown = await cni("CHECK", { id: "never-added", path: c.path }, conf);
    expect(unknown.json.code).toBe(3);
    // bolt's own deep plan repairs it (the attachment is one of its endpoints), and CHECK passes again.
    const repair = await sb.bolt(["apply", "-f", file, "--deep"]);
    expect(repair.code, repair.stderr).toBe(0);
    expect((await cni("CHECK", c, { ...conf, prevResult: results.get(c.id) })).code).toBe(0);
  });

  it("portmap chained after bolt-cni forwards a host port of the target to the container", async () => {
    const c = containers[3]!;
    const ip = results.get(c.id).ips[0].address.split("/")[0];
    const server = execa("ip", ["netns", "exec", c.name!, "node", "-e", "require('net').createServer((s) => s.end('pong from the container')).listen(8080)"], {
      reject: false,
    });
    procs.push(server);
    expect(await listening(c.name!, 8080, { timeoutMs: 15_000 }), "the container's listener").toBe(true);
    // As a runtime runs a chain: each plugin gets the previous one's result; portmap's rules go into the target.
    const portmapConf = {
      cniVersion: "1.0.0",
      name: "gaming",
      type: "portmap",
      capabilities: { portMappings: true },
      runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: "tcp" }] },
      prevResult: results.get(c.id),
    };
    const env = { CNI_CONTAINERID: c.id, CNI_NETNS: c.path, CNI_IFNAME: "eth0" };
    const pm = await cniCall(["timeout", "20", "ip", "netns", "exec", sb.target, PORTMAP], "ADD", env, portmapConf);
    expect(pm.code, `${pm.stdout} ${pm.stderr}`).toBe(0);
    expect(pm.json.ips).toEqual(results.get(c.id).ips);
    const dnat = await must(["ip", "netns", "exec", sb.target, "iptables", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT"]);
    expect(dnat).toContain("18080");
    const connect = `require('net').connect(18080, '10.93.0.1').on('data', (d) => process.stdout.write(d)).on('error', (e) => { console.error(e.message); process.exit(1); })`;
    const got = await run(["timeout", "10", "ip", "netns", "exec", sb.target, "node", "-e", connect]);
    expect(got.stdout, got.stderr).toBe("pong from the container");
    // CHECK of the chain's result: bolt's part still holds.
    expect((await cni("CHECK", c, { ...conf, prevResult: pm.json })).code).toBe(0);
    // DEL in reverse chain order.
    const pmDel = await cniCall(["ip", "netns", "exec", sb.target, PORTMAP], "DEL", env, portmapConf);
    expect(pmDel.code, pmDel.stdout).toBe(0);
    const after = await run(["timeout", "10", "ip", "netns", "exec", sb.target, "node", "-e", connect]);
    expect(after.stdout).not.toContain("pong");
    process.kill(server.pid!, "SIGKILL");
    expect(ip).toBeTruthy();
  });

  it("DEL of every container, twice; DEL after the container's namespace is gone", async () => {
    // Two containers go before their DEL: a named one deleted, an unnamed one whose process died.
    const named = containers[4]!;
    await must(["ip", "netns", "del", named.name!]);
    const unnamed = containers[18]!;
    process.kill(unnamed.pid!, "SIGKILL");
    await waitFor("the stand-in to exit", () => !existsSync(`/proc/${unnamed.pid}`) || undefined);
    const outs = await Promise.all(containers.map((c) => cni("DEL", c, { ...conf, prevResult: results.get(c.id) })));
    outs.forEach((r, i) => expect(r.code, `${containers[i]!.id}: ${r.stdout}`).toBe(0));
    const again = await Promise.all(containers.map((c) => cni("DEL", c, conf, c === unnamed ? { CNI_NETNS: "" } : {})));
    again.forEach((r, i) => expect(r.code, `${containers[i]!.id} (second DEL): ${r.stdout}`).toBe(0));
    expect(readRuntimeEndpoints(sb.stateDir, sb.target)).toEqual([]);
    const store = StateStore.openReadOnly(sb.stateDir);
    const leases = [...store.leases(sb.target).keys()];
    store.close();
    expect(leases).toEqual([]);
    // No host veth left, no attachment name left; the containers' own namespaces are still theirs.
    const links = (await ipJson(sb.target, ["link", "show"])).map((l: Json) => l.ifname);
    expect(links.filter((n: string) => n.startsWith("bv-"))).toEqual([]);
    const names = await netnsList();
    expect(names.filter((n) => n.startsWith(`${sb.prefix}cni-`))).toEqual([]);
    expect(names).toContain(containers[0]!.name);
    expect((await ipJson(containers[0]!.name!, ["link", "show"])).map((l: Json) => l.ifname)).toEqual(["lo"]);
    expect((await sb.planExit(file)).code).toBe(0);
  });

  it("a container on two networks: CNI_IFNAME eth1 is a second interface in its namespace, without a default route", async () => {
    const c = containers[0]!;
    const db = { ...conf, name: "db", network: "db-net" };
    const a = await cni("ADD", c);
    expect(a.code, a.stdout).toBe(0);
    const b = await cni("ADD", c, db, { CNI_IFNAME: "eth1" });
    expect(b.code, b.stdout).toBe(0);
    expect(b.json.interfaces[1]).toMatchObject({ name: "eth1", sandbox: c.path });
    expect(b.json.ips[0].address).toMatch(/^10\.94\.0\.\d+\/24$/);
    // Like the bridge plugin without isDefaultGateway: the secondary network's subnet only.
    expect(b.json.routes).toEqual([]);
    // The network's dns and search, for the runtime's resolv.conf; a network without them says nothing.
    expect(b.json.dns).toEqual({ nameservers: ["10.94.0.53"], search: ["db.internal"] });
    expect(a.json.dns).toEqual({});
    const inside = (args: string[]) => ipJson(c.name!, args);
    expect((await inside(["route", "show", "default"])).map((r: Json) => `${r.gateway} ${r.dev}`)).toEqual(["10.93.0.1 eth0"]);
    expect((await inside(["route", "show", "10.94.0.0/24"]))[0]).toMatchObject({ dev: "eth1" });
    expect((await inside(["addr", "show", "dev", "eth1"]))[0].addr_info.map((x: Json) => `${x.local}/${x.prefixlen}`)).toContain(b.json.ips[0].address);
    expect(await ping(c.name!, "10.93.0.1")).toBe(true);
    expect(await ping(c.name!, "10.94.0.1")).toBe(true);
    // One bolt name for the container's namespace, whatever the number of its attachments.
    expect((await netnsList()).filter((n) => n.startsWith(`${sb.prefix}cni-`))).toHaveLength(1);
    expect((await cni("CHECK", c, { ...conf, prevResult: a.json })).code).toBe(0);
    expect((await cni("CHECK", c, { ...db, prevResult: b.json }, { CNI_IFNAME: "eth1" })).code).toBe(0);
    expect((await sb.planExit(file)).code).toBe(0);
    // DEL of the secondary leaves the primary working; DEL of the last one removes the name.
    expect((await cni("DEL", c, db, { CNI_IFNAME: "eth1" })).code).toBe(0);
    expect((await inside(["link", "show"])).map((l: Json) => l.ifname).sort()).toEqual(["eth0", "lo"]);
    expect(await ping(c.name!, "10.93.0.1")).toBe(true);
    expect((await sb.planExit(file)).code).toBe(0);
    expect((await cni("DEL", c)).code).toBe(0);
    expect((await netnsList()).filter((n) => n.startsWith(`${sb.prefix}cni-`))).toEqual([]);
    expect((await inside(["link", "show"])).map((l: Json) => l.ifname)).toEqual(["lo"]);
    expect((await sb.planExit(file)).code).toBe(0);
  });

  it("through a bolt watch daemon: ADD goes to its API, the daemon plans the attachments", async () => {
    const runDir = baseEnv.BOLT_RUN_DIR!;
    await must(["mkdir", "-m", "0700", "-p", runDir]);
    const socket = join(runDir, `${sb.target}.sock`);
    const daemon = sb.spawnBolt(["watch", "-f", file, "--resync", "60s", "--debounce", "100ms", "--json"], { env: { BOLT_RUN_DIR: runDir } });
    try {
      await waitFor(
        "the daemon's API",
        async () => (await apiRequest(socket, "GET", "/v1/health", undefined, 2000).catch(() => undefined))?.status === 200 || undefined,
        30_000,
      );
      const some = containers.slice(0, 3);
      const t0 = performance.now();
      const outs = await Promise.all(some.map((c) => cni("ADD", c)));
      console.log(`[cni] 3 parallel ADDs through the daemon: ${Math.round(performance.now() - t0)} ms`);
      outs.forEach((r, i) => expect(r.code, `${some[i]!.id}: ${r.stdout}`).toBe(0));
      const listed = (await apiRequest(socket, "GET", "/v1/endpoints")).body.endpoints as Json[];
      expect(listed).toHaveLength(3);
      for (const e of listed) expect(e).toMatchObject({ name: expect.stringMatching(/^cni-[0-9a-f]{12}$/), network: "gaming-net" });
      for (const [i, r] of outs.entries()) {
        expect(inSubnet(r.json.ips[0].address)).toBe(true);
        const e = listed.find((x) => `${x.leased.ip}/24` === r.json.ips[0].address);
        expect(e, some[i]!.id).toBeDefined();
        expect((await cni("CHECK", some[i]!, { ...conf, prevResult: r.json })).code).toBe(0);
      }
      const stats = (await apiRequest(socket, "GET", "/v1/stats?traffic=0")).body.requests as Json;
      expect(stats["POST /v1/endpoints"].count).toBe(3);
      expect(await ping(some[0]!.name!, outs[1]!.json.ips[0].address.split("/")[0])).toBe(true);
      for (const c of some) for (let k = 0; k < 2; k++) expect((await cni("DEL", c)).code).toBe(0);
      expect((await apiRequest(socket, "GET", "/v1/endpoints")).body.endpoints).toEqual([]);
      expect((await netnsList()).filter((n) => n.startsWith(`${sb.prefix}cni-`))).toEqual([]);
    } finally {
      process.kill(daemon.pid!, "SIGTERM");
      await daemon;
    }
  });
});
