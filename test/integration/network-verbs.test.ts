// `bolt network create|ls|connect|disconnect|rm`: each writes or removes one small file in a
// config directory and applies it (`-f DIR` = the merge of its files in name order). Proven on
// the kernel: the bridge appears, two connected endpoints ping each other, plans stay empty;
// bad input (a name that is not file-safe, connecting twice, removing a network that still has
// endpoints, a subnet the config refuses, an apply the kernel refuses) changes neither the
// directory nor the kernel; the round trip leaves the directory as it was, a hand-written file
// with comments untouched.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, SKIP_REASON, ipJson, must, ping, requireBuild, snapshot } from "./harness.js";

describe.skipIf(!!SKIP_REASON)("bolt network verbs (a config directory, applied)", () => {
  const sb = new Sandbox();
  let dir: string;
  const HAND = '# hand-written: bolt must never rewrite this file\n[networks.lab]   # the lab bridge\nsubnet = "10.87.0.0/24"  # keep\n';
  const net = (...args: string[]) => sb.bolt(["network", ...args, "--dir", dir]);
  const listing = () =>
    Object.fromEntries(
      readdirSync(dir)
        .sort()
        .map((f) => [f, readFileSync(join(dir, f), "utf8")]),
    );

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    dir = join(sb.dir, "bolt.d");
    mkdirSync(dir);
    writeFileSync(join(dir, "00-lab.toml"), HAND);
  });
  afterAll(() => sb.cleanup());

  it("create, connect two endpoints, ls: the bridge exists, the endpoints ping each other, a second plan is empty", async () => {
    const before = listing();
    const c = await net("create", "games", "--subnet", "10.86.0.0/24", "--internet", "false");
    expect(c.code, c.stderr).toBe(0);
    expect(readFileSync(join(dir, "games.toml"), "utf8")).toContain('[networks.games]\nsubnet = "10.86.0.0/24"\ninternet = false\n');
    for (const e of ["web", "db"]) {
      const r = await net("connect", "games", e, ...(e === "db" ? ["--ip", "10.86.0.50"] : []));
      expect(r.code, r.stderr).toBe(0);
    }
    expect((await ipJson(sb.target, ["link", "show", "bolt-games"]))[0]?.ifname).toBe("bolt-games");
    expect(await ping(sb.ns("web"), "10.86.0.50")).toBe(true);
    const p = await sb.planExit(dir);
    expect(p.code, p.stdout).toBe(0);
    const ls = JSON.parse((await net("ls", "--json")).stdout) as { name: string; cidr: string; bridge: string; endpoints: string[] }[];
    expect(ls.map((n) => [n.name, n.cidr, n.bridge, n.endpoints])).toEqual([
      ["lab", "10.87.0.0/24", "bolt-lab", []],
      ["games", "10.86.0.0/24", "bolt-games", ["db", "web"]],
    ]);
    const text = (await net("ls")).stdout;
    expect(text.split("\n")[0]).toMatch(/^NAME\s+CIDR\s+BRIDGE\s+ENDPOINTS\s+FILE$/);
    expect(Object.keys(listing())).toEqual([...Object.keys(before), "games.toml", "games@db.toml", "games@web.toml"].sort());
  }, 60_000);

  it("bad input changes neither the directory nor the kernel", async () => {
    const files = listing();
    const kernel = await snapshot(sb.target);
    const cases: [string[], RegExp][] = [
      [["create", "bad/name", "--subnet", "10.1.0.0/24"], /not a file-safe name/],
      [["create", "games", "--subnet", "10.85.0.0/24"], /network "games" already exists \(.*games\.toml:2:1\)/],
      [["create", "other", "--subnet", "10.86.0.0/25"], /other\.toml:3:10: error: network "other": subnet 10\.86\.0\.0\/25 overlaps network "games"/],
      [["connect", "games", "web"], /web is already connected to network "games" \(.*games@web\.toml:2:1\)/],
      [["connect", "nope", "web"], /no network "nope" to connect to/],
      [["rm", "games"], /network "games" still has endpoints: db .*web .*disconnect them first/],
      [["rm", "lab"], /defined in .*00-lab\.toml:2:1, not by `bolt network create`: edit that file instead/],
      [["disconnect", "games", "nobody"], /nobody is not connected to network "games"/],
    ];
    for (const [args, msg] of cases) {
      const r = await net(...args);
      expect(r.code, args.join(" ")).not.toBe(0);
      expect(r.stderr).toMatch(msg);
    }
    expect(listing()).toEqual(files);
    expect(await snapshot(sb.target)).toEqual(kernel);
  }, 60_000);

  it("an apply the kernel refuses puts the file back: directory and kernel unchanged", async () => {
    const files = listing();
    const kernel = await snapshot(sb.target);
    // A foreign bridge holds the name bolt would give the new network's bridge: a plan-time collision.
    await must(["ip", "-n", sb.target, "link", "add", "bolt-taken", "type", "bridge"]);
    try {
      const before = await snapshot(sb.target);
      const r = await net("create", "taken", "--subnet", "10.84.0.0/24");
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/bolt-taken/);
      expect(listing()).toEqual(files);
      expect(await snapshot(sb.target)).toEqual(before);
    } finally {
      await must(["ip", "-n", sb.target, "link", "del", "bolt-taken"]);
    }
    expect(await snapshot(sb.target)).toEqual(kernel);
  }, 60_000);

  it("disconnect and rm: the round trip leaves the directory as it was, the hand-written file untouched", async () => {
    for (const e of ["web", "db"]) {
      const r = await net("disconnect", "games", e);
      expect(r.code, r.stderr).toBe(0);
    }
    const r = await net("rm", "games");
    expect(r.code, r.stderr).toBe(0);
    expect(listing()).toEqual({ "00-lab.toml": HAND });
    expect(await ipJson(sb.target, ["link", "show", "type", "bridge"])).toEqual([expect.objectContaining({ ifname: "bolt-lab" })]);
    const p = await sb.planExit(dir);
    expect(p.code, p.stdout).toBe(0);
  }, 60_000);
});
