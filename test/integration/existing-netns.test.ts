// An endpoint into a namespace that already exists (a job's, a container's): bolt plugs its
// veth in as eth0 with a default route — unless that namespace already has an eth0 or a default
// route bolt did not make, which is a plan-time error at the endpoint (it used to fail mid-apply
// with "File exists"), the kernel untouched.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, must, ping, requireBuild, snapshot } from "./harness.js";

const config = (netns: string) =>
  `[networks.jobs]\nsubnet = "10.97.0.0/24"\ninternet = false\n\n[[endpoints]]\nname = "job"\nnetwork = "jobs"\nnetns = "${netns}"\n`;

describe.skipIf(!!SKIP_REASON)("endpoints into namespaces that exist already", () => {
  const sb = new Sandbox();

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
  });
  afterAll(() => sb.cleanup());

  it("a namespace with its own eth0 is refused at the endpoint's netns, nothing changed", async () => {
    const ns = await sb.addNetns("busy");
    // (no dummy module on this machine class: a veth pair inside the namespace)
    await must(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
    const file = sb.write("busy.toml", config("busy"));
    const before = await snapshot(sb.target);
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`busy.toml:8:9: error: endpoint "job": namespace "${ns}" already has an eth0 that bolt did not make`);
    expect(await snapshot(sb.target)).toEqual(before);
    await must(["ip", "-n", ns, "link", "del", "eth0"]);
  });

  it("a namespace with a default route of its own is refused too", async () => {
    const ns = sb.ns("busy");
    await must(["ip", "-n", ns, "link", "add", "up0", "type", "veth", "peer", "name", "up0p"]);
    await must(["ip", "-n", ns, "link", "set", "up0", "up"]);
    await must(["ip", "-n", ns, "link", "set", "up0p", "up"]);
    await must(["ip", "-n", ns, "route", "add", "default", "dev", "up0"]);
    const r = await sb.bolt(["apply", "-f", sb.write("busy.toml", config("busy"))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`endpoint "job": namespace "${ns}" already has a default route (dev up0) that bolt did not make`);
    await must(["ip", "-n", ns, "link", "del", "up0"]);
  });

  it("a clean existing namespace is plugged into, and kept on destroy", async () => {
    const ns = sb.ns("busy");
    const file = sb.write("busy.toml", config("busy"));
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await ping(ns, "10.97.0.1")).toBe(true);
    expect((await sb.planExit(file)).code).toBe(0);
    const d = await sb.bolt(["destroy"]);
    expect(d.code, d.stderr).toBe(0);
    expect(await sb.mine()).toContain(ns);
  });
});
