// Objects bolt does not own — a bridge, a veth pair, addresses, a static route, an endpoint
// namespace someone else made — survive apply and destroy byte for byte, and a config that
// would collide with them is refused at plan time with file:line:col, touching nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, must, ping, posOf, requireBuild, snapshot } from "./harness.js";
import type { Json, Snapshot } from "./harness.js";
import { expectVeth } from "./checks.js";

const FOREIGN_LINKS = ["fbr0", "fva", "fvb"];

const config = `
[networks.front]
subnet = "10.61.0.0/24"

[[endpoints]]
name = "web"
network = "front"

[[endpoints]]
name = "api"
network = "front"
`;

/** Only the foreign part of a snapshot: its links and the routes through them. */
function foreignPart(s: Snapshot) {
  return {
    links: s.links.filter((l: Json) => FOREIGN_LINKS.includes(l.ifname)),
    routes: s.routes.filter((r: Json) => FOREIGN_LINKS.includes(r.dev)),
    rules: s.rules,
  };
}

describe.skipIf(!!SKIP_REASON)("foreign objects are never touched", () => {
  const sb = new Sandbox();
  let file: string;
  let before: Snapshot;
  let webNs: string;
  let webNsBefore: Snapshot;

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    const ip = (...a: string[]) => must(["ip", "-n", sb.target, ...a]);
    // What another tool (Docker, an admin) left in the namespace.
    await ip("link", "add", "fbr0", "type", "bridge");
    await ip("link", "set", "fbr0", "alias", "managed by someone else", "up");
    await ip("address", "add", "192.168.200.1/24", "dev", "fbr0");
    await ip("link", "add", "fva", "type", "veth", "peer", "name", "fvb");
    await ip("link", "set", "fva", "up");
    await ip("link", "set", "fvb", "up");
    await ip("address", "add", "10.99.0.1/24", "dev", "fva");
    await ip("route", "add", "10.98.0.0/24", "via", "10.99.0.2", "dev", "fva");
    // A job's namespace that exists before bolt: bolt plugs eth0 into it and must leave it.
    webNs = await sb.addNetns("web");
    await must(["ip", "-n", webNs, "link", "set", "lo", "up"]);
    await must(["ip", "-n", webNs, "address", "add", "127.0.0.2/8", "dev", "lo"]);
    file = sb.write("bolt-network.toml", config);
    before = await snapshot(sb.target);
    webNsBefore = await snapshot(webNs);
    expect(before.links.map((l: Json) => l.ifname)).toEqual(["fbr0", "fva", "fvb", "lo"]);
  });
  afterAll(() => sb.cleanup());

  async function expectUntouched() {
    expect(await snapshot(sb.target)).toEqual(before);
    expect(await snapshot(webNs)).toEqual(webNsBefore);
    expect(await sb.mine()).toEqual([sb.target, webNs].sort());
  }

  it("refuses a bridge whose name a foreign link holds, with file:line:col, nothing changed", async () => {
    const text = `${config}\n[networks.taken]\nbridge = "fbr0"\nsubnet = "10.63.0.0/24"\n`;
    const f = sb.write("taken.toml", text);
    const at = posOf(text, '"fbr0"');
    for (const cmd of ["plan", "apply"]) {
      const r = await sb.bolt([cmd, "-f", f]);
      expect(r.code, `${cmd}: ${r.stdout}`).toBe(1);
      expect(r.stderr).toContain(`${f}:${at.line}:${at.col}: error:`);
      expect(r.stderr).toMatch(/fbr0 already exists.*will not take it over/);
    }
    await expectUntouched();
  });

  it("refuses a subnet overlapping a foreign route, with file:line:col, nothing changed", async () => {
    const text = config.replace('subnet = "10.61.0.0/24"', 'subnet = "10.98.0.0/16"');
    const f = sb.write("overlap.toml", text);
    const at = posOf(text, '"10.98.0.0/16"');
    for (const cmd of ["plan", "apply"]) {
      const r = await sb.bolt([cmd, "-f", f]);
      expect(r.code, `${cmd}: ${r.stdout}`).toBe(1);
      expect(r.stderr).toContain(`${f}:${at.line}:${at.col}: error:`);
      expect(r.stderr).toContain("overlaps the existing route 10.98.0.0/24");
    }
    await expectUntouched();
  });

  it("applies next to them, plugging into the existing namespace", async () => {
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    for (const [name, ip] of [
      ["web", "10.61.0.2/24"],
      ["api", "10.61.0.3/24"],
    ] as const) {
      await expectVeth(sb.target, { name, hostIf: `bv-${name}`, bridge: "bolt-front", netns: sb.ns(name), ip, gateway: "10.61.0.1", mtu: 1500 });
    }
    expect(await ping(webNs, "10.61.0.3")).toBe(true);
    // The alias records that bolt did not create the web namespace (no nsc=1).
    const host = (await must(["ip", "-n", sb.target, "-j", "link", "show", "bv-web"])).trim();
    expect(JSON.parse(host)[0].ifalias).not.toContain("nsc=1");
    expect(foreignPart(await snapshot(sb.target))).toEqual(foreignPart(before));
    // bolt's own view: its network and endpoints, and no foreign link among what it owns.
    const show = JSON.parse((await sb.bolt(["show", "--json"])).stdout) as Json;
    const owned = show.resources.map((x: Json) => x.address as string);
    expect(owned.filter((a: string) => /^(network|endpoint):/.test(a)).sort()).toEqual(["endpoint:api", "endpoint:web", "network:front"]);
    expect(JSON.stringify(show.resources)).not.toMatch(/fbr0|fva|fvb/);
    const p = await sb.planExit(file, ["--deep"]);
    expect(p.code, p.stdout + p.stderr).toBe(0);
  });

  it("destroy removes only bolt's objects and keeps the namespace it did not create", async () => {
    const r = await sb.bolt(["destroy"]);
    expect(r.code, r.stderr).toBe(0);
    await expectUntouched();
  });
});
