// Bad mesh input through the CLI (issue 4): the error is printed as file:line:col, apply exits
// 1, and nothing is applied — the namespace reads back exactly as before, no wireguard-go was
// started, no hosts file was written.
import { chmodSync, existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, posOf, requireBuild, run, snapshot } from "./harness.js";
import type { Snapshot } from "./harness.js";
import { MeshLab } from "./mesh-topology.js";

describe.skipIf(!!SKIP_REASON)("mesh bad input through the CLI: file:line:col, exit 1, nothing applied", () => {
  const lab = new MeshLab(["a", "b"], false);
  let before: Snapshot;
  beforeAll(async () => {
    requireBuild();
    await lab.build();
    before = await snapshot(lab.ns("a"));
  });
  afterAll(() => lab.cleanup());

  const nothingApplied = async () => {
    expect(await snapshot(lab.ns("a"))).toEqual(before);
    expect(await lab.wgPids("a")).toEqual([]);
    expect(existsSync(`/etc/netns/${lab.ns("a")}`)).toBe(false);
  };

  it("a private key file with mode 0644", async () => {
    const text = lab.meshText("a");
    const file = lab.sb.write("a-0644.toml", text);
    chmodSync(lab.keyFile("a"), 0o644);
    try {
      const r = await lab.bolt("a", ["apply", "-f", file]);
      expect(r.code).toBe(1);
      const at = posOf(text, `"${lab.keyFile("a")}"`);
      expect(r.stderr).toContain(`${file}:${at.line}:${at.col}: error: private key file ${lab.keyFile("a")} has mode 0644`);
      await nothingApplied();
    } finally {
      chmodSync(lab.keyFile("a"), 0o600);
    }
  });

  it("ftp:// control server; then a peer address taken twice and an ACL with an unknown tag, both in one run", async () => {
    const text = lab
      .meshText("a", { extra: '[[acls]]\naction = "accept"\nsrc = ["tag:ghosts"]\ndst = ["*:*"]\n' })
      .replace('control_server = "static"', 'control_server = "ftp://x"')
      .replace('address = "100.64.7.2"', 'address = "100.64.7.1"');
    const file = lab.sb.write("a-bad.toml", text);
    const r = await lab.bolt("a", ["apply", "-f", file]);
    expect(r.code).toBe(1);
    const cs = posOf(text, '"ftp://x"');
    expect(r.stderr).toContain(`${file}:${cs.line}:${cs.col}: error: ghostwire.control_server "ftp://x": unsupported`);
    const p = await lab.bolt("a", ["plan", "-f", file]);
    expect(p.code).toBe(1);
    await nothingApplied();
    // Fixed one by one, the remaining errors show with their own positions.
    const t2 = text.replace('"ftp://x"', '"static"');
    const f2 = lab.sb.write("a-bad2.toml", t2);
    const r2 = await lab.bolt("a", ["apply", "-f", f2]);
    expect(r2.code).toBe(1);
    const addr = posOf(t2, '"100.64.7.1"');
    const second = t2.indexOf('"100.64.7.1"', t2.indexOf('"100.64.7.1"') + 1);
    const lines = t2.slice(0, second).split("\n");
    expect(addr.line).toBeLessThan(lines.length);
    expect(r2.stderr).toContain(`${f2}:${lines.length}:${lines[lines.length - 1]!.length + 1}: error: mesh: address 100.64.7.1 of "host-b" is also "host-a"'s`);
    const tag = posOf(t2, '"tag:ghosts"');
    expect(r2.stderr).toContain(`${f2}:${tag.line}:${tag.col}: error: ACL names unknown tag "tag:ghosts"`);
    await nothingApplied();
  });

  it("the same interface name in two namespaces: each has its own wireguard-go and control socket", async () => {
    await lab.apply("a", lab.meshFile("a"));
    await lab.apply("b", lab.meshFile("b"));
    expect(lab.ifname("a")).toBe(lab.ifname("b"));
    const [pa] = await lab.wgPids("a");
    const [pb] = await lab.wgPids("b");
    expect(pa).toBeGreaterThan(0);
    expect(pb).toBeGreaterThan(0);
    expect(pa).not.toBe(pb);
    expect(existsSync(lab.socket("a")) && existsSync(lab.socket("b"))).toBe(true);
    // Each socket serves its own namespace's device (its own key); the host's /var/run/wireguard
    // is not where they are (`ip netns exec` alone does not find them).
    expect((await lab.wg("a", "public-key")).trim()).toBe(lab.pub.a);
    expect((await lab.wg("b", "public-key")).trim()).toBe(lab.pub.b);
    expect((await run(["ip", "netns", "exec", lab.ns("b"), "wg", "show", lab.ifname("b"), "public-key"])).stdout.trim()).not.toBe(lab.pub.b);
    for (const h of ["a", "b"] as const) expect((await lab.bolt(h, ["plan", "-f", lab.meshFile(h), "--detailed-exitcode"])).code).toBe(0);
    // Destroying one leaves the other running.
    expect((await lab.bolt("a", ["destroy"])).code).toBe(0);
    expect(await lab.wgPids("a")).toEqual([]);
    expect(await lab.wgPids("b")).toEqual([pb]);
    expect((await lab.wg("b", "public-key")).trim()).toBe(lab.pub.b);
    expect((await lab.bolt("b", ["destroy"])).code).toBe(0);
  });

  it("none of the error output carries key material", async () => {
    await lab.expectNoSecrets();
  });
});
