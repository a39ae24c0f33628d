import { createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync, statSync } from "node:fs";

/**
 * WireGuard keys: 32 bytes, base64 (44 characters). Private keys come only from files that
 * only their owner can read (like systemd-networkd); bolt derives the public key itself
 * (X25519) and never keeps, prints, logs or stores the private key.
 */
const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export function isKey(s: string): boolean {
  return KEY_RE.test(s) && Buffer.from(s, "base64").length === 32;
}

export function publicKeyOf(privateB64: string): string {
  const d = Buffer.from(privateB64, "base64").toString("base64url");
  const priv = createPrivateKey({ key: { kty: "OKP", crv: "X25519", d, x: "" }, format: "jwk" });
  const jwk = createPublicKey(priv).export({ format: "jwk" }) as { x: string };
  return Buffer.from(jwk.x, "base64url").toString("base64");
}

export type KeyFileResult = { ok: true; publicKey?: string } | { ok: false; message: string; missing?: boolean };

/** Reads a key file: must exist, be a file, mode without group/other bits, hold one key. */
export function readKeyFile(path: string, kind: "private" | "preshared"): KeyFileResult {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    return { ok: false, missing, message: `${kind} key file ${path}: ${missing ? "does not exist" : (e as Error).message}` };
  }
  if (!st.isFile()) return { ok: false, message: `${kind} key file ${path} is not a regular file` };
  if (st.mode & 0o077)
    return {
      ok: false,
      message: `${kind} key file ${path} has mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}: group and others must have no access (chmod 600 ${path})`,
    };
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (e) {
    return { ok: false, message: `${kind} key file ${path}: ${(e as Error).message}` };
  }
  if (!isKey(text)) return { ok: false, message: `${kind} key file ${path} does not hold a WireGuard key (44 base64 characters, as \`wg genkey\` writes)` };
  if (kind === "private") return { ok: true, publicKey: publicKeyOf(text) };
  return { ok: true };
}
