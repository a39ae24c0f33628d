// Examples are tests: every file in examples/ validates, applies into a fresh namespace (with
// its own endpoint-namespace prefix), reads back from the kernel as planned, plans empty
// afterwards, and destroy leaves the namespace exactly as it was.
import { basename } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, bolt, exampleFiles, ipJson, ping, requireBuild, snapshot, sysctlGet } from "./harness.js";
import type { Json, Snapshot } from "./harness.js";
import { expectTap, expectVeth, link } from "./checks.js";

// Globbed when the suite is collected: the folder is written by others and grows.
const FILES = exampleFiles();

describe.skipIf(!!SKIP_REASON)("examples/", () => {
  it("has example files (an empty folder must fail, not pass)", () => {
    expect(FILES.length, "examples/ holds no .toml/.yaml/.yml file: every example is an integration test, add one").toBeGreaterThan(0);
  });

  for (const file of FILES) {
    describe(basename(file), () => {
      const sb = new Sandbox();
      let before: Snapshot;
      let changes: Json[] = [];
      const sysctlsBefore = new Map<string, string>();

      beforeAll(async () => {
        requireBuild();
        await sb.addNetns();
        before = await snapshot(sb.target);
      });
      afterAll(() => sb.cleanup());

      it("validates", async () => {
        const r = await bolt(["validate", "-f", file]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain("Configuration is valid");
      });

      it("applies, and the kernel has what the plan said", async () => {
        const p = await sb.bolt(["plan", "--json", "-f", file]);
        expect(p.code, p.stderr).toBe(0);
        changes = (JSON.parse(p.stdout) as Json).changes;
        expect(changes.every((c: Json) => c.action === "create"), "a fresh namespace plans creates only").toBe(true);
        for (const c of changes) if (c.kind === "sysctl") sysctlsBefore.set(c.name, await sysctlGet(sb.target, c.name));

        const r = await sb.bolt(["apply", "-f", file]);
        expect(r.code, r.stderr).toBe(0);
        for (const c of changes) await expectCreated(sb, c);
      });

      it("plans no changes right after apply", async () => {
        const p = await sb.planExit(file, ["--deep"]);
        expect(p.code, p.stdout + p.stderr).toBe(0);
      });

      it("destroy leaves the namespace as before", async () => {
        const r = await sb.bolt(["destroy"]);
        expect(r.code, r.stderr).toBe(0);
        expect(await snapshot(sb.target)).toEqual(before);
        expect(await sb.mine()).toEqual([sb.target]);
        for (const [key, value] of sysctlsBefore) expect(await sysctlGet(sb.target, key), key).toBe(value);
      });
    });
  }
});

/** One planned create, read back from the kernel (kinds this suite knows; others rely on plan + snapshot). */
async function expectCreated(sb: Sandbox, c: Json): Promise<void> {
  const a = c.after;
  if (c.kind === "network") {
    const l = await link(sb.target, a.bridge);
    expect(l.linkinfo?.info_kind).toBe("bridge");
    expect(l.ifalias).toBe(`bolt1,net=${c.name}`);
    expect(l.mtu).toBe(Number(a.mtu));
    expect(l.flags).toContain("UP");
    const addrs = (await ipJson(sb.target, ["addr", "show", "dev", a.bridge]))[0]?.addr_info ?? [];
    const v4 = addrs.filter((x: Json) => x.family === "inet").map((x: Json) => `${x.local}/${x.prefixlen}`).sort();
    expect(v4.join(", ")).toBe(a.address);
  } else if (c.kind === "endpoint" && a.type === "veth") {
    await expectVeth(sb.target, { name: c.name, hostIf: a.host_if, bridge: a.bridge, netns: a.netns, ip: a.ip, gateway: a.gateway, mtu: Number(a.mtu) });
    expect(await ping(a.netns, a.gateway), `${c.name} → its gateway ${a.gateway}`).toBe(true);
  } else if (c.kind === "endpoint" && a.type === "tap") {
    await expectTap(sb.target, { name: c.name, hostIf: a.host_if, bridge: a.bridge, mtu: Number(a.mtu) });
  } else if (c.kind === "sysctl") {
    expect(await sysctlGet(sb.target, c.name)).toBe(a.value);
  }
}
