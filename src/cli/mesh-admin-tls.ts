import { closeSync, openSync, unlinkSync, writeSync } from "node:fs";
import { BoltError } from "../core/diagnostics.js";
import { isKey } from "../../reconcilers/wireguard/keys.js";
import { signNodeCert } from "../../reconcilers/wireguard/store-cert.js";
import type { NodeCert } from "../../reconcilers/wireguard/store-cert.js";
import { adminTls, readPemFile } from "../../reconcilers/wireguard/store-tls.js";
import type { StoreTls } from "../../reconcilers/wireguard/store-tls.js";

/**
 * The admin's side of the store's TLS (RBAC mode): `--ca --cert --key` (or BOLT_ETCD_CA /
 * BOLT_ETCD_CERT / BOLT_ETCD_KEY) connect as the certificate's CN; `enroll --ca-key`
 * (BOLT_ETCD_CA_KEY) signs each node's client certificate with the CA of `--ca`; `--out`
 * writes the bundle, which then holds the node's TLS key, for root only.
 */
export interface AdminTlsFlags {
  ca?: string;
  cert?: string;
  key?: string;
  caKey?: string;
}

const env = (v: string | undefined, name: string) => v ?? (process.env[name] || undefined);

export function adminTlsFrom(o: AdminTlsFlags): StoreTls | undefined {
  const ca = env(o.ca, "BOLT_ETCD_CA");
  const cert = env(o.cert, "BOLT_ETCD_CERT");
  const key = env(o.key, "BOLT_ETCD_KEY");
  // `approve --key` pinned a WireGuard key before the store had TLS.
  if (key && isKey(key) && !ca && !cert)
    throw new BoltError("--key is the TLS client key file (with --ca and --cert); pin a WireGuard public key with --public-key");
  return adminTls({ ca, cert, key });
}

/** How long a node's certificate is valid: as long as its enrollment (--expires), else a year. */
export function certDays(expiresAt: string | undefined): number {
  return expiresAt ? Math.max(1, Math.ceil((Date.parse(expiresAt) - Date.now()) / 86_400_000)) : 365;
}

/** The node's key and certificate (CN = name), signed with --ca-key by the CA of --ca (the admin connects with TLS). */
export async function nodeCredentials(o: AdminTlsFlags, name: string, days: number): Promise<NodeCert> {
  const caKey = env(o.caKey, "BOLT_ETCD_CA_KEY");
  if (!caKey)
    throw new BoltError(
      `mesh enroll: with TLS every node needs its own client certificate: give the CA's key with --ca-key FILE (or BOLT_ETCD_CA_KEY) to sign one for "${name}"`,
    );
  readPemFile(caKey, "--ca-key", true); // readable, and for its owner only
  return signNodeCert({ caFile: env(o.ca, "BOLT_ETCD_CA")!, caKeyFile: caKey, cn: name, days });
}

/**
 * `--out FILE`: opened before anything is enrolled (create-exclusive, mode 0600), so an
 * existing file is refused while nothing has changed yet, and the key lands only in it.
 */
export class BundleFile {
  private fd?: number;
  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, "wx", 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new BoltError(
        code === "EEXIST"
          ? `--out ${path}: exists; a bundle is never overwritten (remove it first)`
          : `--out ${path}: cannot create it (${code ?? (e as Error).message})`,
      );
    }
  }
  write(text: string): void {
    writeSync(this.fd!, text);
    closeSync(this.fd!);
    this.fd = undefined;
  }
  /** Enrolling failed: no empty bundle stays behind. */
  discard(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    unlinkSync(this.path);
  }
}
