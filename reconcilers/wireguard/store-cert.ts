import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BoltError } from "../../src/base/diagnostics.js";
import { ProcessRunner } from "../../src/exec/process-runner.js";
import type { CommandRunner } from "../../src/exec/runner.js";

/**
 * A node's TLS client certificate for the store (MULTIHOST.md §2.5): a fresh P-256 key and a
 * certificate with CN = the node's name (its etcd user), signed by the admin's CA through
 * `openssl` from PATH, as bolt runs `ip` and `nft` (Node's crypto cannot sign X.509).
 *
 * The new key exists on disk only in a 0700 temp dir (mkdtemp) while openssl writes it, and
 * the dir is removed before this returns; the CA key is the admin's file, read by openssl.
 */
export interface NodeCert {
  cert: string;
  key: string;
}

// A client certificate and nothing else: it cannot sign others or serve TLS.
const EXTENSIONS = [
  "basicConstraints = critical, CA:FALSE",
  "keyUsage = critical, digitalSignature, keyEncipherment",
  "extendedKeyUsage = clientAuth",
  "subjectKeyIdentifier = hash",
  "authorityKeyIdentifier = keyid, issuer",
  "",
].join("\n");

export async function signNodeCert(
  o: { caFile: string; caKeyFile: string; cn: string; days: number },
  runner: CommandRunner = new ProcessRunner(),
): Promise<NodeCert> {
  const dir = mkdtempSync(join(tmpdir(), "bolt-enroll-")); // mode 0700
  const fail = (step: string, stderr: string): never => {
    // openssl's progress lines are not the reason.
    const why = stderr
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !/^(Certificate request self-signature ok|subject=|Signature ok|Getting CA Private Key)/.test(l))[0];
    throw new BoltError(`--ca-key ${o.caKeyFile}: openssl could not ${step} for "${o.cn}": ${why ?? "no reason given"}`);
  };
  try {
    const keyFile = join(dir, "node.key");
    const extFile = join(dir, "ext.cnf");
    writeFileSync(extFile, EXTENSIONS, { mode: 0o600 });
    const csr = await runner.run(
      ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-subj", `/CN=${o.cn}`],
      undefined,
      { timeoutMs: 30_000 },
    );
    if (csr.code !== 0) fail("make a key", csr.stderr);
    // A random positive 127-bit serial: two certificates from one CA never share one.
    const serial = randomBytes(16);
    serial[0]! &= 0x7f;
    const signed = await runner.run(
      [
        "openssl",
        "x509",
        "-req",
        "-CA",
        o.caFile,
        "-CAkey",
        o.caKeyFile,
        "-set_serial",
        `0x${serial.toString("hex")}`,
        "-days",
        String(o.days),
        "-sha256",
        "-extfile",
        extFile,
      ],
      csr.stdout,
      { timeoutMs: 30_000 },
    );
    if (signed.code !== 0 || !signed.stdout.includes("BEGIN CERTIFICATE")) fail("sign the certificate", signed.stderr);
    return { cert: signed.stdout, key: readFileSync(keyFile, "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
