// WireGuard keys: bolt derives public keys itself (X25519 in node's crypto) and must agree
// with `wg pubkey` bit for bit; key files are checked for mode and content, and reading one
// hands on only the public key.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isKey, publicKeyOf, readKeyFile } from "../../reconcilers/wireguard/keys.js";

const HAS_WG = (() => {
  try {
    execFileSync("wg", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const dir = mkdtempSync(join(tmpdir(), "bolt-wg-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");

/** An X25519 key pair in WireGuard's encoding, from node's crypto (independent of bolt's code). */
function keyPair(): { priv: string; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const raw = (k: { export(o: { format: "jwk" }): unknown }, f: "d" | "x") =>
    Buffer.from((k.export({ format: "jwk" }) as Record<string, string>)[f]!, "base64url").toString("base64");
  return { priv: raw(privateKey, "d"), pub: raw(publicKey, "x") };
}

describe("publicKeyOf", () => {
  it("RFC 7748 §6.1 test vectors (Alice and Bob)", () => {
    expect(publicKeyOf(b64("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))).toBe(
      b64("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
    );
    expect(publicKeyOf(b64("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))).toBe(
      b64("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
    );
  });

  it("an unclamped scalar gives the same key as its clamped form (wg genkey clamps, users may not)", () => {
    const raw = Buffer.alloc(32, 0xff);
    const clamped = Buffer.from(raw);
    clamped[0]! &= 248;
    clamped[31]! = (clamped[31]! & 127) | 64;
    expect(publicKeyOf(raw.toString("base64"))).toBe(publicKeyOf(clamped.toString("base64")));
  });

  it.skipIf(!HAS_WG)("agrees with `wg pubkey` on 25 keys from `wg genkey`", () => {
    for (let i = 0; i < 25; i++) {
      const priv = execFileSync("wg", ["genkey"], { encoding: "utf8" }).trim();
      const pub = execFileSync("wg", ["pubkey"], { input: priv + "\n", encoding: "utf8" }).trim();
      expect(publicKeyOf(priv)).toBe(pub);
    }
  });

  it.skipIf(!HAS_WG)("agrees with `wg pubkey` on unclamped random bytes", () => {
    for (let i = 0; i < 10; i++) {
      const priv = Buffer.from(Array.from({ length: 32 }, () => Math.floor(Math.random() * 256))).toString("base64");
      expect(publicKeyOf(priv)).toBe(execFileSync("wg", ["pubkey"], { input: priv + "\n", encoding: "utf8" }).trim());
    }
  });
});

describe("isKey", () => {
  it("44 base64 characters that decode to 32 bytes", () => {
    const { priv, pub } = keyPair();
    expect(isKey(priv)).toBe(true);
    expect(isKey(pub)).toBe(true);
    expect(isKey(pub.slice(0, 43))).toBe(false);
    expect(isKey(pub + "=")).toBe(false);
    expect(isKey(pub.slice(0, 42) + "B=")).toBe(false); // the last character before "=" carries 2 unused bits
    expect(isKey(pub.replace(/[A-Za-z]/, "*"))).toBe(false);
    expect(isKey("")).toBe(false);
    expect(isKey(Buffer.alloc(31).toString("base64"))).toBe(false);
  });
});

describe("readKeyFile", () => {
  const write = (name: string, text: string, mode: number) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode });
    chmodSync(p, mode);
    return p;
  };

  it("a 0600 private key file: only the derived public key comes back", () => {
    const { priv, pub } = keyPair();
    const r = readKeyFile(write("ok.key", priv + "\n", 0o600), "private");
    expect(r).toEqual({ ok: true, publicKey: pub });
    expect(JSON.stringify(r)).not.toContain(priv);
  });

  it("0400 is fine; any group or other bit is refused, naming the mode and the fix", () => {
    const { priv } = keyPair();
    expect(readKeyFile(write("ro.key", priv, 0o400), "private").ok).toBe(true);
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o601]) {
      const p = write(`m${mode.toString(8)}.key`, priv, mode);
      const r = readKeyFile(p, "private");
      expect(r.ok).toBe(false);
      expect(!r.ok && r.message).toBe(
        `private key file ${p} has mode ${mode.toString(8).padStart(4, "0")}: group and others must have no access (chmod 600 ${p})`,
      );
    }
  });

  it("missing file (flagged missing: offline validation only warns), a directory, garbage, two keys", () => {
    const missing = readKeyFile(join(dir, "nope.key"), "private");
    expect(missing).toMatchObject({ ok: false, missing: true });
    const d = join(dir, "adir");
    mkdirSync(d, { mode: 0o700 });
    expect(readKeyFile(d, "private")).toMatchObject({ ok: false, message: expect.stringContaining("is not a regular file") });
    expect(readKeyFile(write("junk.key", "hello", 0o600), "private")).toMatchObject({
      ok: false,
      message: expect.stringContaining("does not hold a WireGuard key"),
    });
    const two = `${keyPair().priv}\n${keyPair().priv}\n`;
    expect(readKeyFile(write("two.key", two, 0o600), "private").ok).toBe(false);
  });

  it("a preshared key file: checked the same way, nothing returned", () => {
    const psk = keyPair().priv;
    expect(readKeyFile(write("ok.psk", psk, 0o600), "preshared")).toEqual({ ok: true });
    expect(readKeyFile(write("open.psk", psk, 0o644), "preshared")).toMatchObject({ ok: false, message: expect.stringContaining("preshared key file") });
  });
});
