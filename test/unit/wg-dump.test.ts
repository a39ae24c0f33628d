// `wg show IF dump` parsing on a recorded dump (fixtures/wg/wg-show-dump.txt: wireguard-go
// 0.0.2023, wireguard-tools 1.0.2021; a peer with preshared key, endpoint, two allowed IPs, a
// handshake and keepalive, one with nothing set, one with 0.0.0.0/0). Before committing, the
// interface's private key and the preshared key were replaced by obviously fake ones; the
// parser must never hand either on.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseWgDump, pskDigest } from "../../reconcilers/wireguard/dump.js";

const DUMP = readFileSync(join(import.meta.dirname, "../../fixtures/wg/wg-show-dump.txt"), "utf8");
/** base64("private-key-fake-for-the-tests!!") and base64("preshared-fake-for-the-tests-123") */
const FAKE_PRIVATE = "cHJpdmF0ZS1rZXktZmFrZS1mb3ItdGhlLXRlc3RzISE=";
const FAKE_PSK = "cHJlc2hhcmVkLWZha2UtZm9yLXRoZS10ZXN0cy0xMjM=";

describe("parseWgDump", () => {
  it("the fixture holds only the fake secrets (the real ones were replaced before committing)", () => {
    const [head, first] = DUMP.split("\n");
    expect(head!.split("\t")[0]).toBe(FAKE_PRIVATE);
    expect(first!.split("\t")[1]).toBe(FAKE_PSK);
  });

  it("reads the interface line: public key, listen port, fwmark (hex)", () => {
    const d = parseWgDump(DUMP)!;
    expect(d.publicKey).toBe("3ULvVWlUSqWmNt2/hAUdrW+BeKJMVs1AmBHfFtH9TRg=");
    expect(d.listenPort).toBe(51820);
    expect(d.fwmark).toBe(0x0b000000);
  });

  it("reads every peer: endpoint, sorted allowed IPs, handshake, transfer, keepalive; '(none)' and 'off' as empty", () => {
    const d = parseWgDump(DUMP)!;
    expect(d.peers).toHaveLength(3);
    expect(d.peers[0]).toEqual({
      publicKey: "zjloEVd2BHHisXcpJjopJ5Gd9SLPk9g5LgkuF8TsQWU=",
      psk: pskDigest(FAKE_PSK),
      endpoint: "198.18.5.2:51821",
      allowedIps: ["10.9.0.2/32", "192.168.50.0/24"],
      latestHandshake: 1795321300,
      rx: 404,
      tx: 528,
      keepalive: 25,
    });
    expect(d.peers[1]).toEqual({
      publicKey: "R4lVQaHCk4mbSV1jFgX6r7IiqP2EQ4fB46Ctowo60VY=",
      psk: "",
      endpoint: "",
      allowedIps: [],
      latestHandshake: 0,
      rx: 0,
      tx: 0,
      keepalive: 0,
    });
    expect(d.peers[2]).toMatchObject({ endpoint: "203.0.113.9:41641", allowedIps: ["0.0.0.0/0"], psk: "" });
  });

  it("never returns key material: no private key, no preshared key (a short digest stands in)", () => {
    const d = parseWgDump(DUMP)!;
    const text = JSON.stringify(d);
    expect(text).not.toContain(FAKE_PRIVATE);
    expect(text).not.toContain(FAKE_PSK);
    expect(text).not.toContain(Buffer.from(FAKE_PSK, "base64").toString("hex"));
    expect(d.peers[0]!.psk).toMatch(/^sha256:[0-9a-f]{12}$/);
    expect(Object.keys(d).sort()).toEqual(["fwmark", "listenPort", "peers", "publicKey"]);
  });

  it("the digest tells preshared keys apart and ignores surrounding whitespace (file vs dump)", () => {
    expect(pskDigest(FAKE_PSK)).toBe(pskDigest(`${FAKE_PSK}\n`));
    expect(pskDigest(FAKE_PSK)).not.toBe(pskDigest(FAKE_PRIVATE));
  });

  it("an interface without peers, fwmark off, no listen port yet", () => {
    const d = parseWgDump(`${FAKE_PRIVATE}\t3ULvVWlUSqWmNt2/hAUdrW+BeKJMVs1AmBHfFtH9TRg=\t0\toff\n`)!;
    expect(d).toEqual({ publicKey: "3ULvVWlUSqWmNt2/hAUdrW+BeKJMVs1AmBHfFtH9TRg=", listenPort: 0, fwmark: 0, peers: [] });
  });

  it("no private key set: the public key column is '(none)'", () => {
    expect(parseWgDump("(none)\t(none)\t0\toff\n")!.publicKey).toBe("(none)");
  });

  it("empty or truncated output (the device has no userspace server): undefined", () => {
    expect(parseWgDump("")).toBeUndefined();
    expect(parseWgDump("\n")).toBeUndefined();
    expect(parseWgDump("abc\tdef\n")).toBeUndefined();
  });
});
