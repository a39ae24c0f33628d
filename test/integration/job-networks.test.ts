// Issue 15, jobs on networks: endpoint modes (none: a namespace with only lo; host: nothing,
// with a warning), one namespace on several networks (Joblet's "security groups": a db network
// without internet, an app network with it, a job on both), and `broadcast +` on bridges and
// endpoint addresses — proved on the real kernel with the CLI, ip, ping and nc.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, ipJson, must, ping, posOf, requireBuild, run, snapshot } from "./harness.js";
import type { Json } from "./harness.js";
import { Topology, UPLINK, applyConverged } from "./nft-topology.js";

const CONFIG = `
[networks.db]
subnet = "10.151.0.0/24"
internet = false

[networks.app]
subnet = "10.152.0.0/24"

[[endpoints]]
name = "pg"
network = "db"
ip = "10.151.0.10"

[[endpoints]]
name = "web"
network = "app"
ip = "10.152.0.10"

[[endpoints]]
name = "job-db"
network = "db"
netns = "job"
ip = "10.151.0.20"

[[endpoints]]
name = "job-app"
network = "app"
netns = "job"
ip = "10.152.0.20"
default = true

[[endpoints]]
name = "offline"
mode = "none"

[[endpoints]]
name = "shell"
mode = "host"
`;

/** The inside of a namespace: interface → [state, IPv4 addresses with their broadcast]. */
async function inside(ns: string): Promise<Record<string, string[]>> {
  const addrs = (await ipJson(ns, ["addr", "show"])) as Json[];
  return Object.fromEntries(
    addrs.map((a) => [
      a.ifname,
      [
        a.flags.includes("UP") ? "UP" : "DOWN",
        ...(a.addr_info as Json[]).filter((i) => i.family === "inet").map((i) => `${i.local}/${i.prefixlen} brd ${i.broadcast ?? "-"}`),
      ],
    ]),
  );
}

describe.skipIf(!!SKIP_REASON)("jobs: endpoint modes, several networks per namespace, broadcast", () => {
  const t = new Topology();
  const sb = t.sb;
  let file = "";

  beforeAll(async () => {
    requireBuild();
    await t.build();
    file = sb.write("bolt-network.toml", CONFIG);
  });
  afterAll(() => t.cleanup());

  it("plans with a warning for the host-mode endpoint and nothing for it", async () => {
    const r = await sb.bolt(["plan", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    const at = posOf(CONFIG, 'mode = "host"');
    expect(r.stderr).toContain(
      `${file}:${at.line}:${at.col + 7}: warning: endpoint "shell": mode = "host" shares the host's own network namespace: no isolation`,
    );
    expect(await sb.planned(file)).not.toContain("create endpoint:shell");
  });

  it("applies; a second plan (also --deep) is empty", async () => {
    await applyConverged(sb, [file]);
    const deep = await sb.planExit(file, ["--deep"]);
    expect(deep.code, deep.stdout).toBe(0);
  });

  it("mode none: a namespace bolt made with only lo, up", async () => {
    expect(await inside(t.ns("offline"))).toEqual({ lo: ["UP", "127.0.0.1/8 brd -"] });
    expect(await ping(t.ns("offline"), "127.0.0.1")).toBe(true);
    expect((await sb.mine()).filter((n) => n.endsWith("shell"))).toEqual([]);
  });

  it("one namespace on two networks: eth0 and eth1 with broadcast, one default route through the default = true network", async () => {
    expect(await inside(t.ns("job"))).toEqual({
      lo: ["UP", "127.0.0.1/8 brd -"],
      eth0: ["UP", "10.151.0.20/24 brd 10.151.0.255"],
      eth1: ["UP", "10.152.0.20/24 brd 10.152.0.255"],
    });
    const routes = (await ipJson(t.ns("job"), ["-4", "route", "show"])) as Json[];
    expect(routes.map((r) => `${r.dst} ${r.gateway ?? "-"} ${r.dev}`).sort()).toEqual([
      "10.151.0.0/24 - eth0",
      "10.152.0.0/24 - eth1",
      "default 10.152.0.1 eth1",
    ]);
    const bridges = (await ipJson(sb.target, ["addr", "show", "dev", "bolt-db"])) as Json[];
    expect(bridges[0].addr_info.filter((i: Json) => i.family === "inet").map((i: Json) => i.broadcast)).toEqual(["10.151.0.255"]);
  });

  it("security groups: the job reaches both networks, only the app network reaches the outside", async () => {
    await t.serveTcp(t.ns("pg"), 5432, "pg");
    await t.serveTcp(t.ns("web"), 8080, "web");
    await t.serveTcp(t.outside, 80, "outside");
    expect(await t.tcp(t.ns("job"), "10.151.0.10", 5432), "job → db").toBe("pg");
    expect(await t.tcp(t.ns("job"), "10.152.0.10", 8080), "job → app").toBe("web");
    expect(await t.tcp(t.ns("job"), UPLINK.outside, 80), "job → outside (through app)").toBe("outside");
    expect(await t.tcp(t.ns("web"), UPLINK.outside, 80), "app → outside").toBe("outside");
    expect(await t.tcp(t.ns("pg"), UPLINK.outside, 80, 1), "db → outside: no internet").toBeUndefined();
    // Isolation between the networks: the db endpoint does not reach the app endpoint.
    expect(await t.tcp(t.ns("pg"), "10.152.0.10", 8080, 1), "db → app endpoint").toBeUndefined();
  });

  it("the default route moves with default = true; moving back and forth converges", async () => {
    const moved = sb.write("moved.toml", CONFIG.replace("default = true\n", ""));
    await applyConverged(sb, [moved]);
    const routes = (await ipJson(t.ns("job"), ["-4", "route", "show", "default"])) as Json[];
    expect(routes.map((r) => `${r.gateway} ${r.dev}`)).toEqual(["10.151.0.1 eth0"]);
    expect(await t.tcp(t.ns("job"), UPLINK.outside, 80, 1), "job's default is the db network now: no internet").toBeUndefined();
    await applyConverged(sb, [file]);
    expect(await t.tcp(t.ns("job"), UPLINK.outside, 80)).toBe("outside");
  });

  it("an address without a broadcast (bolt before brd, or by hand) is an update", async () => {
    await must(["ip", "-n", sb.target, "address", "del", "10.152.0.1/24", "dev", "bolt-app"]);
    await must(["ip", "-n", sb.target, "address", "add", "10.152.0.1/24", "dev", "bolt-app"]);
    const p = await sb.bolt(["plan", "-f", file]);
    expect(p.stdout).toMatch(/~ network "app"[\s\S]*~ broadcast\s+= - -> "10\.152\.0\.255"/);
    await applyConverged(sb, [file]);
    const a = (await ipJson(sb.target, ["addr", "show", "dev", "bolt-app"])) as Json[];
    expect(a[0].addr_info.filter((i: Json) => i.family === "inet").map((i: Json) => i.broadcast)).toEqual(["10.152.0.255"]);
    // The routes the address took with it are back: the job still reaches the outside.
    expect(await t.tcp(t.ns("job"), UPLINK.outside, 80)).toBe("outside");
  });

  it("destroy removes every namespace bolt made, the shared one once", async () => {
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(await sb.mine()).toEqual([sb.target, t.outside].sort());
  });
});

describe.skipIf(!!SKIP_REASON)("jobs: bad input is one line at file:line:col, nothing touched", () => {
  const t = new Topology();
  const sb = t.sb;
  const NETS = `
[networks.db]
subnet = "10.153.0.0/24"

[networks.app]
subnet = "10.154.0.0/24"
`;
  beforeAll(async () => {
    requireBuild();
    await t.build();
  });
  afterAll(() => t.cleanup());

  const cases: [string, string, string, RegExp][] = [
    [
      "a mode that conflicts with a network",
      `${NETS}\n[[endpoints]]\nname = "x"\nmode = "none"\nnetwork = "db"\n`,
      '"db"',
      /error: endpoint "x": mode = "none" \(a namespace with only lo\) cannot have "network"; it applies to mode = "bridge" only$/,
    ],
    [
      "a host mode with an ip",
      `${NETS}\n[[endpoints]]\nname = "x"\nmode = "host"\nip = "10.153.0.9"\n`,
      '"10.153.0.9"',
      /error: endpoint "x": mode = "host" \(the host's own namespace, untouched\) cannot have "ip"; it applies to mode = "bridge" only$/,
    ],
    [
      "two endpoints in one namespace on the same network",
      `${NETS}\n[[endpoints]]\nname = "a"\nnetwork = "db"\nnetns = "j"\n\n[[endpoints]]\nname = "b"\nnetwork = "db"\nnetns = "j"\n`,
      '"db"',
      /error: endpoint "b": namespace "bolt-t-\w+-j" is already on network "db" through endpoint "a" \(one interface per network in a namespace\)$/,
    ],
    [
      "two default = true in one namespace",
      `${NETS}\n[[endpoints]]\nname = "a"\nnetwork = "db"\nnetns = "j"\ndefault = true\n\n[[endpoints]]\nname = "b"\nnetwork = "app"\nnetns = "j"\ndefault = true\n`,
      "true\n",
      /error: endpoint "b": namespace "bolt-t-\w+-j" already has its default route through endpoint "a" \(default = true on both\)$/,
    ],
    [
      "a none-mode namespace shared with another endpoint",
      `${NETS}\n[[endpoints]]\nname = "a"\nnetwork = "db"\nnetns = "j"\n\n[[endpoints]]\nname = "b"\nmode = "none"\nnetns = "j"\n`,
      '"j"\n',
      /error: endpoint "b": namespace "bolt-t-\w+-j" is also endpoint "a"'s, and a mode = "none" namespace holds only lo/,
    ],
  ];

  it.each(cases)("%s", async (_what, text, needle, message) => {
    const f = sb.write("bad.toml", text);
    const before = await snapshot(sb.target);
    const nsBefore = await sb.mine();
    // The last occurrence of the needle is the offending key's value (the second endpoint's).
    const i = text.lastIndexOf(needle);
    const at = posOf(text.slice(0, i) + "\u0000" + text.slice(i + 1), "\u0000");
    for (const verb of ["plan", "apply"]) {
      const r = await sb.bolt([verb, "-f", f]);
      expect(r.code, r.stdout).toBe(1);
      const lines = r.stderr.trim().split("\n");
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]!.startsWith(`${f}:${at.line}:${at.col}: `), r.stderr).toBe(true);
      expect(lines[0]).toMatch(message);
    }
    expect(await snapshot(sb.target)).toEqual(before);
    expect(await sb.mine()).toEqual(nsBefore);
    const r = await run(["ip", "netns", "list"]);
    expect(r.stdout).not.toMatch(new RegExp(`${sb.prefix}j\\b`));
  });
});
