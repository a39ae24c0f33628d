// The whole life of a config in a real namespace: apply → kernel and traffic checks → no-op
// plan → subnet + MTU change → apply → checks again → destroy leaves the namespace as before.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, ping, requireBuild, snapshot, sysctlGet } from "./harness.js";
import type { Json, Snapshot } from "./harness.js";
import { expectNetwork, expectTap, expectVeth } from "./checks.js";

const config = (front: { subnet: string; mtu: number }) => `
[networks.front]
subnet = "${front.subnet}"
mtu = ${front.mtu}

[networks.back]
subnet = "10.62.0.0/24"

[[endpoints]]
name = "web"
network = "front"

[[endpoints]]
name = "api"
network = "front"

[[endpoints]]
name = "db"
network = "back"
ip = "10.62.0.50"

[[endpoints]]
name = "vm1"
network = "back"
tap = true

[sysctl]
"net.ipv4.ip_forward" = 1
`;

describe.skipIf(!!SKIP_REASON)("lifecycle: apply, change, destroy", () => {
  const sb = new Sandbox();
  let file: string;
  let before: Snapshot;
  let forwardBefore: string;

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    file = sb.write("bolt-network.toml", config({ subnet: "10.61.0.0/24", mtu: 1400 }));
    before = await snapshot(sb.target);
    forwardBefore = await sysctlGet(sb.target, "net.ipv4.ip_forward");
  });
  afterAll(() => sb.cleanup());

  /** Everything the config says, read back from the kernel, plus traffic over it. */
  async function checkKernel(front: { net: string; mtu: number }) {
    const gwF = `${front.net}.1`;
    await expectNetwork(sb.target, { name: "front", bridge: "bolt-front", address: `${gwF}/24`, mtu: front.mtu });
    await expectNetwork(sb.target, { name: "back", bridge: "bolt-back", address: "10.62.0.1/24", mtu: 1500 });
    // IPAM: first free addresses of the pool, in config order (the gateway .1 is taken).
    const eps = [
      { name: "web", ip: `${front.net}.2/24`, gateway: gwF, bridge: "bolt-front", mtu: front.mtu },
      { name: "api", ip: `${front.net}.3/24`, gateway: gwF, bridge: "bolt-front", mtu: front.mtu },
      { name: "db", ip: "10.62.0.50/24", gateway: "10.62.0.1", bridge: "bolt-back", mtu: 1500 },
    ];
    for (const e of eps) await expectVeth(sb.target, { ...e, hostIf: `bv-${e.name}`, netns: sb.ns(e.name) });
    await expectTap(sb.target, { name: "vm1", hostIf: "bt-vm1", bridge: "bolt-back", mtu: 1500 });
    expect(await sysctlGet(sb.target, "net.ipv4.ip_forward")).toBe("1");

    expect(await ping(sb.ns("web"), `${front.net}.3`), "web → api over the bridge").toBe(true);
    expect(await ping(sb.ns("api"), `${front.net}.2`), "api → web").toBe(true);
    expect(await ping(sb.ns("web"), gwF), "web → its gateway").toBe(true);
    expect(await ping(sb.ns("db"), "10.62.0.1"), "db → its gateway").toBe(true);
  }

  async function expectNoChanges() {
    const p = await sb.planExit(file, ["--deep"]);
    expect(p.stderr).toBe("");
    expect(p.code, p.stdout).toBe(0);
  }

  it("applies two networks, three veth endpoints, a tap and a sysctl", async () => {
    const plan = await sb.planExit(file);
    expect(plan.code, plan.stderr).toBe(2);
    const planned = await sb.planned(file);
    // Later kinds (nft for NAT/isolation) may add their own creates: only creates, though.
    expect(planned).toEqual(
      expect.arrayContaining([
        "create network:front",
        "create network:back",
        ...["web", "api", "db", "vm1"].map((e) => `create endpoint:${e}`),
        "create sysctl:net.ipv4.ip_forward",
      ]),
    );
    expect(planned.filter((p) => !p.startsWith("create "))).toEqual([]);
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    await checkKernel({ net: "10.61.0", mtu: 1400 });
    await expectNoChanges();
  });

  it("a second apply changes nothing and keeps every address", async () => {
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("No changes");
    await checkKernel({ net: "10.61.0", mtu: 1400 });
  });

  it("moves a network to a new subnet and MTU, endpoints follow", async () => {
    sb.write("bolt-network.toml", config({ subnet: "10.71.0.0/24", mtu: 1300 }));
    const plan = await sb.planExit(file);
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stdout).toMatch(/~ network "front"/);
    expect(plan.stdout).toContain('"10.61.0.1/24" -> "10.71.0.1/24"');
    // In place: nothing is deleted or replaced, back and its endpoints are not touched.
    const planned = await sb.planned(file);
    expect(planned).toEqual(expect.arrayContaining(["update network:front", "update endpoint:web", "update endpoint:api"]));
    expect(planned.filter((p) => !p.startsWith("update ") || /(back|db|vm1)$/.test(p))).toEqual([]);
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    await checkKernel({ net: "10.71.0", mtu: 1300 });
    // The old subnet is gone from the endpoints' namespaces, not just shadowed.
    const routes = await snapshot(sb.ns("web"));
    expect(JSON.stringify(routes)).not.toContain("10.61.0.");
    await expectNoChanges();
  });

  it("destroy leaves the namespace exactly as before, endpoint namespaces and sysctl included", async () => {
    const r = await sb.bolt(["destroy"]);
    expect(r.code, r.stderr).toBe(0);
    expect(await snapshot(sb.target)).toEqual(before);
    expect(await sb.mine()).toEqual([sb.target]);
    expect(await sysctlGet(sb.target, "net.ipv4.ip_forward")).toBe(forwardBefore);
    const show = await sb.bolt(["show", "--json"]);
    expect(show.code, show.stderr).toBe(0);
    expect((JSON.parse(show.stdout) as Json).resources).toEqual([]);
    // Nothing left to do either way: the config would create everything again.
    expect((await sb.planExit(file)).code).toBe(2);
  });
});
