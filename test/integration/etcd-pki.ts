// Certificates for the TLS etcd tests, made with openssl (argv only) in a test's temp dir: a
// CA, member server certificates for 127.0.0.1, and client certificates whose CN is the etcd
// user. Keys are written 0600 by openssl; the dir is the caller's to remove.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { must } from "./harness.js";

export interface Pem {
  cert: string;
  key: string;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

export class Pki {
  readonly ca: Pem;
  constructor(
    readonly dir: string,
    readonly name = "ca",
  ) {
    this.ca = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  }

  /** A self-signed CA (CA:TRUE, as OpenSSL's default v3_ca makes it). */
  async init(): Promise<this> {
    await must(["openssl", "req", "-x509", "-new", ...EC, "-keyout", this.ca.key, "-out", this.ca.cert, "-subj", `/CN=bolt test ${this.name}`, "-days", "2"]);
    return this;
  }

  /**
   * A certificate signed by this CA. `days` may be negative: OpenSSL 3.0's `x509 -days -1`
   * makes notAfter a day before notBefore (= now), an already expired certificate.
   */
  async issue(file: string, cn: string, o: { server?: boolean; days?: number } = {}): Promise<Pem> {
    const out = { cert: join(this.dir, `${file}.pem`), key: join(this.dir, `${file}.key`) };
    const ext = join(this.dir, `${file}.ext`);
    writeFileSync(
      ext,
      o.server
        ? "basicConstraints = CA:FALSE\nsubjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth, clientAuth\n"
        : "basicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n",
    );
    const csr = await must(["openssl", "req", "-new", ...EC, "-keyout", out.key, "-subj", `/CN=${cn}`]);
    const serial = `0x1${randomBytes(8).toString("hex")}`; // positive, unique per certificate
    const cert = await must(
      ["openssl", "x509", "-req", "-CA", this.ca.cert, "-CAkey", this.ca.key, "-set_serial", serial, "-days", String(o.days ?? 2), "-sha256", "-extfile", ext],
      csr,
    );
    writeFileSync(out.cert, cert);
    return out;
  }
}
