// bolt-cni's pure parts (src/cni): the CNI_* variables and network config a runtime hands it,
// the spec's error codes for each kind of bad input, the attachment's name, the result
// document for 1.0.0 and 0.4.0, and VERSION answered without a config or a kernel.
import { describe, expect, it } from "vitest";
import { resultOf } from "../../src/cni/attachment.js";
import { CniError } from "../../src/cni/errors.js";
import { cniMain } from "../../src/cni/plugin.js";
import { containerNetns, endpointName, parseRequest } from "../../src/cni/request.js";
import { ScriptedRunner } from "../../src/exec/scripted-runner.js";

const conf = { cniVersion: "1.0.0", name: "games", type: "bolt", network: "gaming-net", netns: "edge", stateDir: "/var/lib/bolt" };
const env = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "abc-1", CNI_NETNS: "/proc/42/ns/net", CNI_IFNAME: "eth0" };

const codeOf = (e: Record<string, string | undefined>, c: unknown): number => {
  try {
    parseRequest(e, typeof c === "string" ? c : JSON.stringify(c));
  } catch (x) {
    if (x instanceof CniError) return x.code;
    throw x;
  }
  return 0;
};

describe("bolt-cni request", () => {
  it("reads a runtime's ADD", () => {
    const r = parseRequest(env, JSON.stringify(conf));
    expect(r).toMatchObject({ command: "ADD", containerId: "abc-1", netnsPath: "/proc/42/ns/net", ifname: "eth0" });
    expect(r.config).toMatchObject({ network: "gaming-net", target: "edge", stateDir: "/var/lib/bolt", cniVersion: "1.0.0" });
    expect(parseRequest(env, JSON.stringify({ ...conf, netns: undefined })).config.target).toBeNull();
  });

  it("gives each kind of bad input the spec's code", () => {
    expect(codeOf({ ...env, CNI_COMMAND: "BOOT" }, conf)).toBe(4);
    expect(codeOf({ ...env, CNI_CONTAINERID: "" }, conf)).toBe(4);
    expect(codeOf({ ...env, CNI_CONTAINERID: "a/b" }, conf)).toBe(4);
    expect(codeOf({ ...env, CNI_IFNAME: "a-name-longer-than-15" }, conf)).toBe(4);
    expect(codeOf({ ...env, CNI_NETNS: "relative/path" }, conf)).toBe(4);
    // DEL needs no namespace: the container's may be gone.
    expect(codeOf({ ...env, CNI_COMMAND: "DEL", CNI_NETNS: "" }, conf)).toBe(0);
    expect(codeOf(env, "{nope")).toBe(6);
    expect(codeOf(env, "[1]")).toBe(6);
    expect(codeOf(env, { ...conf, cniVersion: "0.3.1" })).toBe(1);
    expect(codeOf(env, { ...conf, network: undefined })).toBe(7);
    expect(codeOf(env, { ...conf, netns: "bad name" })).toBe(7);
    expect(codeOf(env, { ...conf, stateDir: "relative" })).toBe(7);
    expect(codeOf(env, { ...conf, ipam: { type: "host-local" } })).toBe(2);
  });

  it("names an attachment by container id and ifname, stably", () => {
    const a = endpointName("abc-1", "eth0");
    expect(a).toMatch(/^cni-[0-9a-f]{12}$/);
    expect(endpointName("abc-1", "eth0")).toBe(a);
    expect(endpointName("abc-1", "eth1")).not.toBe(a);
    expect(endpointName("abc-2", "eth0")).not.toBe(a);
    // The namespace name is the container's: every ifname of it shares one, another container has its own.
    expect(containerNetns("abc-1")).toMatch(/^cni-ns-[0-9a-f]{12}$/);
    expect(containerNetns("abc-1")).toBe(containerNetns("abc-1"));
    expect(containerNetns("abc-2")).not.toBe(containerNetns("abc-1"));
    expect(containerNetns("abc-1")).not.toBe(a);
  });
});

describe("bolt-cni result", () => {
  const a = { hostIf: "bv-cni-1", hostMac: "02:00:00:00:00:01", innerMac: "02:00:00:00:00:02", ip: "10.0.0.5/24", gateway: "10.0.0.1" };

  it("is the spec's 1.0.0 document: interfaces, ips on the container's interface, the default route", () => {
    expect(resultOf(a, "eth0", "/proc/42/ns/net", "1.0.0")).toEqual({
      cniVersion: "1.0.0",
      interfaces: [
        { name: "bv-cni-1", mac: "02:00:00:00:00:01" },
        { name: "eth0", mac: "02:00:00:00:00:02", sandbox: "/proc/42/ns/net" },
      ],
      ips: [{ address: "10.0.0.5/24", gateway: "10.0.0.1", interface: 1 }],
      routes: [{ dst: "0.0.0.0/0", gw: "10.0.0.1" }],
      dns: {},
    });
  });

  it("names each address's version for 0.4.0, and carries IPv6 when the network has it", () => {
    expect(resultOf(a, "eth1", "/x", "1.0.0", { nameservers: ["10.0.0.53"], search: ["lan"] }).dns).toEqual({ nameservers: ["10.0.0.53"], search: ["lan"] });
    const r = resultOf({ ...a, ip6: "fd00::5/64", gateway6: "fd00::1" }, "eth0", "/x", "0.4.0");
    expect(r.ips).toEqual([
      { version: "4", address: "10.0.0.5/24", gateway: "10.0.0.1", interface: 1 },
      { version: "6", address: "fd00::5/64", gateway: "fd00::1", interface: 1 },
    ]);
    expect(r.routes).toEqual([
      { dst: "0.0.0.0/0", gw: "10.0.0.1" },
      { dst: "::/0", gw: "fd00::1" },
    ]);
  });
});

describe("bolt-cni main", () => {
  it("answers VERSION, and an error document with a non-zero exit, without touching the kernel", async () => {
    // A runner that refuses every command: neither call may run one.
    const runner = new ScriptedRunner([]);
    let out = "";
    expect(await cniMain({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"0.4.0"}', (s) => void (out += s), runner)).toBe(0);
    expect(JSON.parse(out)).toEqual({ cniVersion: "0.4.0", supportedVersions: ["0.4.0", "1.0.0"] });
    out = "";
    expect(await cniMain({ ...env, CNI_IFNAME: "" }, JSON.stringify(conf), (s) => void (out += s), runner)).toBe(1);
    expect(JSON.parse(out)).toEqual({ cniVersion: "1.0.0", code: 4, msg: "CNI_IFNAME is not set" });
  });
});
