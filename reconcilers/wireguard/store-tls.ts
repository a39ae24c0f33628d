import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { BoltError } from "../../src/base/diagnostics.js";

/**
 * TLS client credentials for the mesh's etcd store (MULTIHOST.md §2.6): with
 * `--client-cert-auth`, etcd takes the certificate's CN as the user every request runs as,
 * and that user's roles decide what it may read and write. The material is checked here,
 * before connecting, because a refused TLS handshake only reaches bolt as "no connection".
 */
export interface StoreTls {
  /** PEM: the CA the store's server certificate is checked against */
  ca: string;
  /** PEM: the client certificate; its CN is the etcd user */
  cert: string;
  /** PEM: the client certificate's private key (never printed or logged) */
  key: string;
  /** the certificate's CN */
  user: string;
  /** who connects: a host with its bundle, or an admin with --ca/--cert/--key (only what a refusal says differs) */
  as: "node" | "admin";
}

/** The subject's CN, or undefined. */
export function commonName(cert: X509Certificate): string | undefined {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
}

function parseCert(pem: string, where: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new BoltError(`${where}: ${what} is not a PEM certificate`);
  }
}

/**
 * Checks a client certificate before it is used: in its validity period, its key matching,
 * and (for a node's bundle, whose CA signed it) issued by `issuer`. Returns its CN.
 */
export function checkClientCert(where: string, m: { cert: string; key: string; issuer?: string }, now = Date.now()): string {
  const cert = parseCert(m.cert, where, "the TLS client certificate");
  const cn = commonName(cert);
  if (!cn) throw new BoltError(`${where}: the TLS client certificate has no CN (etcd takes the CN as the user)`);
  const notAfter = Date.parse(cert.validTo);
  if (notAfter <= now)
    throw new BoltError(`${where}: the TLS client certificate (CN=${cn}) expired on ${new Date(notAfter).toISOString()}; the store would refuse it`);
  const notBefore = Date.parse(cert.validFrom);
  if (notBefore > now) throw new BoltError(`${where}: the TLS client certificate (CN=${cn}) is not valid before ${new Date(notBefore).toISOString()}`);
  if (m.issuer !== undefined) {
    const ca = parseCert(m.issuer, where, "the CA");
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
      throw new BoltError(`${where}: the TLS client certificate (CN=${cn}) is not signed by the CA that comes with it (${ca.subject.replace(/\n/g, ", ")})`);
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(m.key));
  } catch {
    throw new BoltError(`${where}: the TLS client key is not a PEM private key`);
  }
  if (!matches) throw new BoltError(`${where}: the TLS client key does not belong to the certificate (CN=${cn})`);
  return cn;
}

/** Reads a PEM file named by a flag; a private key must be readable by its owner only (like WireGuard keys). */
export function readPemFile(path: string, flag: string, secret = false): string {
  try {
    if (secret && statSync(path).mode & 0o077) throw new BoltError(`${flag} ${path}: a private key readable by group or others; chmod 600 it`);
    return readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof BoltError) throw e;
    throw new BoltError(`${flag} ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * The admin's credentials from `--ca --cert --key` (or BOLT_ETCD_CA / BOLT_ETCD_CERT /
 * BOLT_ETCD_KEY): all three or none; none is open mode (plain http, no users).
 */
export function adminTls(o: { ca?: string; cert?: string; key?: string }): StoreTls | undefined {
  const given = (["ca", "cert", "key"] as const).filter((k) => o[k]);
  if (!given.length) return undefined;
  if (given.length < 3) {
    const missing = (["ca", "cert", "key"] as const).filter((k) => !o[k]).map((k) => `--${k}`);
    throw new BoltError(`the store's TLS credentials are --ca, --cert and --key together (missing ${missing.join(", ")})`);
  }
  const ca = readPemFile(o.ca!, "--ca");
  const cert = readPemFile(o.cert!, "--cert");
  const key = readPemFile(o.key!, "--key", true);
  // No issuer check: etcd's --trusted-ca-file decides which CA it accepts for clients, and that
  // may be another CA than the one that signed its server certificate (--ca).
  const user = checkClientCert(`--cert ${o.cert}`, { cert, key });
  return { ca, cert, key, user, as: "admin" };
}

/**
 * Why the store refused a request, as one clause, or undefined when it did not refuse (the
 * caller then says "failed" or "unreachable"). A refused TLS handshake reaches gRPC only as
 * "No connection established" with OpenSSL's alert inside; a refusal is never "unreachable",
 * so a host never falls back to its last snapshot for it.
 */
export function refusalOf(message: string, tls: StoreTls | undefined, roleHint: string): string | undefined {
  const whose = tls ? ` (CN=${tls.user})` : "";
  if (/alert (bad certificate|unknown ca|certificate unknown|unsupported certificate)/i.test(message))
    return `the store refused the TLS client certificate${whose}: it is not signed by a CA the store trusts`;
  if (/alert certificate expired/i.test(message)) return `the store refused the TLS client certificate${whose}: expired`;
  if (/alert certificate revoked/i.test(message)) return `the store refused the TLS client certificate${whose}: revoked`;
  if (/alert handshake failure|peer did not return a certificate/i.test(message))
    return "the store requires a TLS client certificate (--client-cert-auth): give --ca, --cert and --key, or a bundle from `bolt mesh enroll` with TLS";
  if (/unable to verify the first certificate|self[- ]signed certificate|unable to get local issuer|certificate verify failed/i.test(message))
    return `its server certificate is not signed by the CA given (${tls?.as === "node" ? "the bundle's ca" : "--ca"})`;
  if (/Hostname\/IP does not match|altnames/i.test(message)) return "its server certificate does not name the address it was reached at";
  if (/permission denied/i.test(message))
    return `permission denied (${tls?.as === "node" ? "this node's etcd user is gone: revoked?" : tls ? `etcd user "${tls.user}" lacks the role for this: ${roleHint}` : "the store has auth enabled: give --ca, --cert and --key"})`;
  if (/user name is empty|invalid auth token|authentication failed/i.test(message))
    return "the store requires authentication: give --ca, --cert and --key (or a bundle with a certificate)";
  return undefined;
}

let sniQuiet = false;
/**
 * grpc-js hands Node's TLS the member's IP as the SNI name for etcd://IP:PORT, and Node
 * prints a DEP0123 warning on stderr for that. etcd ignores SNI (the certificate is checked
 * against the IP's SAN all the same), so the warning would only break bolt's one-line
 * output; every other warning is printed as before.
 */
export function quietIpSniWarning(): void {
  if (sniQuiet) return;
  sniQuiet = true;
  const emit = process.emitWarning.bind(process) as (...a: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === "object" && rest[0] ? (rest[0] as { code?: string }).code : rest[1];
    if (code === "DEP0123") return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
