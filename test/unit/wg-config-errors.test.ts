// Bad WireGuard and mesh input (issue 4), through loadIntent on temp files: malformed keys (in
// the config and in key files), key files readable by others, duplicate public keys and
// addresses, allowed IPs shared by two peers, an exit node that is not a peer, ACLs naming
// unknown tags, unsupported control_server schemes — each a ConfigError whose error sits at the
// exact file:line:col of the offending value (or of the peer, for a conflict between peers).
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { kinds } from "./helpers/builders.js";

const dir = mkdtempSync(join(tmpdir(), "bolt-wg-bad-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An X25519 key pair as `wg genkey` / `wg pubkey` print them (node's crypto: no wg needed). */
function keyPair(): { priv: string; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const b64 = (k: { export(o: { format: "jwk" }): unknown }, f: "d" | "x") =>
    Buffer.from((k.export({ format: "jwk" }) as Record<string, string>)[f]!, "base64url").toString("base64");
  return { priv: b64(privateKey, "d"), pub: b64(publicKey, "x") };
}

function keyFile(name: string, content: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, content + "\n", { mode });
  chmodSync(p, mode);
  return p;
}

const self = keyPair();
const SELF_KEY = keyFile("self.key", self.priv);
const [P1, P2, P3] = [keyPair(), keyPair(), keyPair()];

/** 1-based line and column of `needle` (its n-th occurrence) in `text`. */
function posOf(text: string, needle: string, nth = 1): { line: number; col: number } {
  let i = -1;
  for (let k = 0; k < nth; k++) {
    i = text.indexOf(needle, i + 1);
    if (i < 0) throw new Error(`${needle} (#${nth}) not in config`);
  }
  const lines = text.slice(0, i).split("\n");
  return { line: lines.length, col: lines[lines.length - 1]!.length + 1 };
}

let n = 0;
function errorsOf(text: string, ext = "toml"): { file: string; errors: Diagnostic[] } {
  const file = join(dir, `c${n++}.${ext}`);
  writeFileSync(file, text);
  let err: unknown;
  try {
    loadIntent([file], "");
  } catch (e) {
    err = e;
  }
  expect(err, "the config must be refused").toBeInstanceOf(ConfigError);
  return { file, errors: (err as ConfigError).diagnostics.filter((d) => d.severity === "error") };
}

/** The config is refused with an error matching `message` at the position of `at` (n-th occurrence). */
function expectError(text: string, message: RegExp, at: string, nth = 1): Diagnostic {
  const { file, errors } = errorsOf(text);
  const hit = errors.find((e) => message.test(e.message));
  expect(hit, `no error matching ${message} among: ${errors.map((e) => e.message).join(" | ")}`).toBeDefined();
  const p = posOf(text, at, nth);
  expect(hit!.source).toEqual({ file, line: p.line, col: p.col });
  return hit!;
}

const mesh = (nodeExtra = "", peers = "", rest = "") => `[ghostwire]
control_server = "static"

[node]
hostname = "host-a"
interface = "gw0"
address = "100.64.0.1"
private_key_file = "${SELF_KEY}"
tags = ["server"]
${nodeExtra}
${peers}
${rest}`;

const peer = (host: string, pub: string, address: string, extra = "") => `
[[peers]]
hostname = "${host}"
public_key = "${pub}"
endpoint = "198.18.0.9:41641"
address = "${address}"
tags = ["client"]
${extra}`;

const wg = (peers: string, extra = "") => `[wireguard.wg0]
private_key_file = "${SELF_KEY}"
listen_port = 51820
address = "10.0.0.1/24"
${extra}
${peers}`;

const wgPeer = (pub: string, allowed: string[], extra = "") => `
[[wireguard.wg0.peers]]
public_key = "${pub}"
allowed_ips = ${JSON.stringify(allowed)}
${extra}`;

describe("WireGuard and mesh config errors, each at its file:line:col", () => {
  it("a valid mesh file and a valid [wireguard.wg0] load (the baseline the cases break)", () => {
    for (const text of [mesh("", peer("host-b", P1.pub, "100.64.0.2")), wg(wgPeer(P1.pub, ["10.0.0.2/32"]))]) {
      const file = join(dir, `ok${n++}.toml`);
      writeFileSync(file, text);
      const { intent } = loadIntent([file], "");
      expect(kinds(intent).wireguard).toHaveLength(1);
      expect(kinds(intent).wireguard![0]!.publicKey).toBe(self.pub);
    }
  });

  it("malformed public_key of a mesh peer and of a [wireguard] peer", () => {
    const bad = "not-a-wireguard-key=";
    expectError(mesh("", peer("host-b", bad, "100.64.0.2")), /public_key|WireGuard/, `"${bad}"`);
    // Any 32 bytes are a Curve25519 public key; 43 characters (the "=" lost) are not 32 bytes.
    const short = P1.pub.slice(0, 43);
    expectError(wg(wgPeer(short, ["10.0.0.2/32"])), /public_key|WireGuard/, `"${short}"`);
  });

  it("an endpoint port over 65535 (five digits pass the host:port pattern) is refused, not wrapped", () => {
    expectError(
      wg(wgPeer(P1.pub, ["10.0.0.2/32"], 'endpoint = "198.18.0.9:99999"')),
      /endpoint "198\.18\.0\.9:99999": port must be 1-65535/,
      '"198.18.0.9:99999"',
    );
    expectError(
      mesh("", peer("host-b", P1.pub, "100.64.0.2").replace("198.18.0.9:41641", "198.18.0.9:70000")),
      /endpoint "198\.18\.0\.9:70000": port must be 1-65535/,
      '"198.18.0.9:70000"',
    );
  });

  it("a private key file whose content is not a key", () => {
    const f = keyFile("garbage.key", "hello, this is not a key");
    const text = mesh("", peer("host-b", P1.pub, "100.64.0.2")).replace(SELF_KEY, f);
    expectError(text, /does not hold a WireGuard key/, `"${f}"`);
    // A public key where the private one belongs is a key, but not a private key bolt can check:
    // it is accepted as 32 bytes; a truncated one is not.
    const t = keyFile("truncated.key", self.priv.slice(0, 30));
    expectError(wg(wgPeer(P1.pub, ["10.0.0.2/32"])).replace(SELF_KEY, t), /does not hold a WireGuard key/, `"${t}"`);
  });

  it("a private key file with mode 0644: the error names the file at private_key_file's value", () => {
    const f = keyFile("open.key", self.priv, 0o644);
    const text = mesh("", peer("host-b", P1.pub, "100.64.0.2")).replace(SELF_KEY, f);
    const e = expectError(text, /mode 0644/, `"${f}"`);
    expect(e.message).toContain(f);
    expect(e.message).toContain("chmod 600");
    const g = keyFile("group.key", self.priv, 0o640);
    expectError(wg(wgPeer(P1.pub, ["10.0.0.2/32"])).replace(SELF_KEY, g), /mode 0640/, `"${g}"`);
  });

  it("a preshared key file readable by others, or holding no key", () => {
    const open = keyFile("open.psk", P3.priv, 0o644);
    expectError(wg(wgPeer(P1.pub, ["10.0.0.2/32"], `preshared_key_file = "${open}"`)), /preshared key file .* mode 0644/, `"${open}"`);
    const junk = keyFile("junk.psk", "xyz");
    expectError(wg(wgPeer(P1.pub, ["10.0.0.2/32"], `preshared_key_file = "${junk}"`)), /preshared key file .* does not hold/, `"${junk}"`);
  });

  it("a private key inline in the config is refused (keys come from files only)", () => {
    const text = wg(wgPeer(P1.pub, ["10.0.0.2/32"]), `private_key = "${P2.priv}"`);
    const { errors } = errorsOf(text);
    expect(errors.some((e) => /private_key/.test(e.message))).toBe(true);
    // and the key itself is never echoed back in an error
    expect(errors.map((e) => e.message).join("\n")).not.toContain(P2.priv);
  });

  it("duplicate public keys: two mesh peers, two [wireguard] peers, a peer with the node's own key", () => {
    expectError(mesh("", peer("host-b", P1.pub, "100.64.0.2") + peer("host-c", P1.pub, "100.64.0.3")), /two peers have the public key/, "[[peers]]", 2);
    expectError(wg(wgPeer(P1.pub, ["10.0.0.2/32"]) + wgPeer(P1.pub, ["10.0.0.3/32"])), /two peers have the public key/, "[[wireguard.wg0.peers]]", 2);
    expectError(mesh("", peer("host-b", self.pub, "100.64.0.2")), /own public key/, `"${self.pub}"`);
  });

  it("duplicate addresses: two peers, or a peer with the node's own address", () => {
    expectError(
      mesh("", peer("host-b", P1.pub, "100.64.0.2") + peer("host-c", P2.pub, "100.64.0.2")),
      /address 100\.64\.0\.2 of "host-c" is also "host-b"'s/,
      '"100.64.0.2"',
      2,
    );
    expectError(mesh("", peer("host-b", P1.pub, "100.64.0.1")), /address 100\.64\.0\.1 of "host-b" is also "host-a"'s/, '"100.64.0.1"', 2);
  });

  it("allowed IPs overlapping between peers ([wireguard] allowed_ips, mesh routes with accept_routes)", () => {
    expectError(
      wg(wgPeer(P1.pub, ["10.0.0.0/24"]) + wgPeer(P2.pub, ["10.0.0.5/32"])),
      /allowed IP 10\.0\.0\.5\/32 overlaps 10\.0\.0\.0\/24/,
      "[[wireguard.wg0.peers]]",
      2,
    );
    const text = mesh(
      "accept_routes = true",
      peer("host-b", P1.pub, "100.64.0.2", 'routes = ["192.168.0.0/16"]') + peer("host-c", P2.pub, "100.64.0.3", 'routes = ["192.168.7.0/24"]'),
    );
    expectError(text, /allowed IP 192\.168\.7\.0\/24 overlaps 192\.168\.0\.0\/16/, "[[peers]]", 2);
  });

  it("IPv6: addresses and allowed IPs load in canonical form; ::/0 is a full tunnel; host bits are errors at the element", () => {
    const file = join(dir, `v6-${n++}.toml`);
    writeFileSync(
      file,
      wg(wgPeer(P1.pub, ["10.0.0.2/32", "FD00:0077:0:0::/64"])).replace('address = "10.0.0.1/24"', 'address = ["10.0.0.1/24", "fd00:8:0::1/64"]'),
    );
    const w = kinds(loadIntent([file], "").intent).wireguard![0]!;
    expect(w.addresses6).toEqual(["fd00:8::1/64"]);
    expect(w.peers[0]!.allowedIps6).toEqual(["fd00:77::/64"]);
    const full = join(dir, `v6-${n++}.toml`);
    writeFileSync(full, wg(wgPeer(P1.pub, ["10.0.0.2/32", "::/0"])));
    const f = kinds(loadIntent([full], "").intent).wireguard![0]!;
    // An IPv6 full tunnel, like 0.0.0.0/0: its own packets are marked (policy routing keeps them off the tunnel).
    expect(f.peers[0]!.allowedIps6).toEqual(["::/0"]);
    expect(f.fwmark).toBe(0x0b000000);
    expectError(wg(wgPeer(P1.pub, ["fd00::1/64"])), /allowed_ips "fd00::1\/64" is not an IPv6 CIDR without host bits/, '"fd00::1/64"');
  });

  it("address may be a list (as the schema documents); a bad element is reported at that element", () => {
    const file = join(dir, `list${n++}.toml`);
    writeFileSync(file, wg(wgPeer(P1.pub, ["10.0.0.2/32"])).replace('address = "10.0.0.1/24"', 'address = ["10.0.0.1/24", "10.0.1.1/24"]'));
    const w = kinds(loadIntent([file], "").intent).wireguard![0]!;
    expect(
      [w.address, ...(w.moreAddresses ?? [])].map((a) => `${a!.addr >>> 24}.${(a!.addr >>> 16) & 255}.${(a!.addr >>> 8) & 255}.${a!.addr & 255}/${a!.prefix}`),
    ).toEqual(["10.0.0.1/24", "10.0.1.1/24"]);
    const text = wg(wgPeer(P1.pub, ["10.0.0.2/32"])).replace('address = "10.0.0.1/24"', 'address = ["10.0.0.1/24", "10.0.1.999/24"]');
    expectError(text, /address "10\.0\.1\.999\/24" must be an address with prefix, like 10.0.0.1\/24 or fd00::1\/64/, '"10.0.1.999/24"');
  });

  it("an exit node that is not one of the peers", () => {
    expectError(
      mesh('use_exit_node = "host-z"', peer("host-b", P1.pub, "100.64.0.2")),
      /use_exit_node "host-z" is not one of the \[\[peers\]\] \(host-b\)/,
      '"host-z"',
    );
  });

  it("ACLs naming unknown tags (src and dst), and a destination without a port", () => {
    const acl = (src: string, dst: string) => `[[acls]]\naction = "accept"\nsrc = ["${src}"]\ndst = ["${dst}"]\n`;
    expectError(mesh("", peer("host-b", P1.pub, "100.64.0.2"), acl("tag:ghosts", "tag:server:22")), /unknown tag "tag:ghosts"/, '"tag:ghosts"');
    expectError(mesh("", peer("host-b", P1.pub, "100.64.0.2"), acl("tag:client", "tag:nobody:22")), /unknown tag "tag:nobody"/, '"tag:nobody:22"');
    expectError(mesh("", peer("host-b", P1.pub, "100.64.0.2"), acl("tag:client", "host-a")), /needs a port|is not valid/, '"host-a"]');
    expectError(mesh("", peer("host-b", P1.pub, "100.64.0.2"), acl("tag:client", "host-q:22")), /"host-q", which is neither/, '"host-q:22"');
  });

  it("an unsupported control_server scheme (ftp://x), and a bare word", () => {
    for (const cs of ["ftp://x", "coordinator"]) {
      const text = mesh("", peer("host-b", P1.pub, "100.64.0.2")).replace('control_server = "static"', `control_server = "${cs}"`);
      // The schema already refuses a bare word; a URL of an unknown scheme reaches bolt's own check.
      expectError(text, cs.includes("://") ? /control_server "ftp:\/\/x": unsupported/ : /"coordinator" is not valid/, `"${cs}"`);
    }
  });

  it("an etcd:// control server read without the store (validate, offline) says so at the key; https:// is not enforced", () => {
    const text = mesh("", peer("host-b", P1.pub, "100.64.0.2")).replace('control_server = "static"', 'control_server = "etcd://127.0.0.1:2379"');
    const file = join(dir, `cs${n++}.toml`);
    writeFileSync(file, text);
    const { warnings } = loadIntent([file], "");
    const w = warnings.find((d) => /control_server/.test(d.message));
    expect(w?.severity).toBe("warning");
    expect(w?.message).toContain("not read here (offline); plan, apply and watch add the store's approved nodes");
    const p = posOf(text, '"etcd://');
    expect(w!.source).toMatchObject({ line: p.line, col: p.col });
    writeFileSync(file, text.replace("etcd://127.0.0.1:2379", "https://ctl.example"));
    expect(loadIntent([file], "").warnings.find((d) => /control_server/.test(d.message))?.message).toMatch(
      /^accepted, not enforced: .* only etcd:\/\/ stores are read/,
    );
  });

  it("a failing [[acl_tests]] assertion is a config error at the test (it blocks apply)", () => {
    const rest = `[[acls]]\naction = "accept"\nsrc = ["tag:client"]\ndst = ["tag:server:27015"]\nproto = "udp"\n\n[[acl_tests]]\nsrc = "host-b"\nproto = "tcp"\naccept = ["host-a:22"]\n`;
    expectError(
      mesh("", peer("host-b", P1.pub, "100.64.0.2"), rest),
      /acl_test: host-b → host-a:22 \(tcp\) is denied, the test expects accept/,
      "[[acl_tests]]",
    );
  });

  it("all errors of a file are reported at once", () => {
    const f = keyFile("open2.key", self.priv, 0o644);
    const text = mesh('use_exit_node = "host-z"', peer("host-b", P1.pub, "100.64.0.2") + peer("host-c", P2.pub, "100.64.0.2")).replace(SELF_KEY, f);
    const { errors } = errorsOf(text);
    // The key file error stops the node early: bolt cannot know who it is without its key.
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors[0]!.message).toMatch(/mode 0644/);
  });
});
