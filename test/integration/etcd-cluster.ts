// A throwaway 3-member etcd cluster on loopback for the mesh-store tests (issue 10): Debian's
// etcd-server, ports chosen per run, data in a temp dir, members stopped by PID at the end.
// With `tls`, clients need a certificate (--client-cert-auth, https on 127.0.0.1; peers stay
// http on loopback) from the cluster's own CA, and auth is enabled with a CN-only root user.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import type { ResultPromise } from "execa";
import { run } from "./harness.js";
import { freePort, waitFor } from "./watch-helpers.js";
import { Pki } from "./etcd-pki.js";
import type { Pem } from "./etcd-pki.js";

export class EtcdCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "bolt-etcd-"));
  private readonly members: { name: string; client: number; peer: number; proc?: ResultPromise }[] = [];
  /** TLS: the cluster's CA (it signs members and clients alike), its server and root certificates */
  readonly pki?: Pki;
  private server?: Pem;
  root?: Pem;

  constructor(o: { tls?: boolean } = {}) {
    if (o.tls) {
      mkdirSync(join(this.dir, "pki"), { mode: 0o700 });
      this.pki = new Pki(join(this.dir, "pki"));
    }
  }

  private get scheme(): string {
    return this.pki ? "https" : "http";
  }

  /** The members' client URLs (https on a TLS cluster), for an etcd3 client of the test's own. */
  get endpoints(): string[] {
    return this.members.map((m) => `${this.scheme}://127.0.0.1:${m.client}`);
  }

  /** `bolt mesh …` flags to connect as `who` (TLS clusters only). */
  tlsFlags(who: Pem): string[] {
    return ["--ca", this.pki!.ca.cert, "--cert", who.cert, "--key", who.key];
  }

  /** etcd://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 */
  get url(): string {
    return `etcd://${this.members.map((m) => `127.0.0.1:${m.client}`).join(",")}`;
  }

  async start(n = 3): Promise<void> {
    if (this.pki) {
      await this.pki.init();
      this.server = await this.pki.issue("server", "etcd-member", { server: true });
      this.root = await this.pki.issue("root", "root");
    }
    for (let i = 0; i < n; i++) this.members.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
    const cluster = this.members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
    for (const m of this.members) this.spawn(m, cluster, "new");
    await waitFor("etcd to elect a leader", async () => (await this.etcdctl(["endpoint", "health", "--cluster"])).code === 0, 30_000, 200);
    if (this.pki)
      // etcd refuses `auth enable` without a root user; CN auth needs no password.
      for (const args of [
        ["user", "add", "root", "--no-password"],
        ["user", "grant-role", "root", "root"],
        ["auth", "enable"],
      ]) {
        const r = await this.etcdctl(args);
        if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.stderr.trim()}`);
      }
  }

  private spawn(m: (typeof this.members)[number], cluster: string, state: "new" | "existing"): void {
    m.proc = execa(
      "etcd",
      [
        "--name",
        m.name,
        "--data-dir",
        join(this.dir, m.name),
        "--listen-client-urls",
        `${this.scheme}://127.0.0.1:${m.client}`,
        "--advertise-client-urls",
        `${this.scheme}://127.0.0.1:${m.client}`,
        "--listen-peer-urls",
        `http://127.0.0.1:${m.peer}`,
        "--initial-advertise-peer-urls",
        `http://127.0.0.1:${m.peer}`,
        "--initial-cluster",
        cluster,
        "--initial-cluster-state",
        state,
        "--initial-cluster-token",
        `bolt-test-${this.dir.slice(-6)}`,
        ...(this.pki ? ["--client-cert-auth", "--trusted-ca-file", this.pki.ca.cert, "--cert-file", this.server!.cert, "--key-file", this.server!.key] : []),
      ],
      { reject: false, stdout: "ignore", stderr: "ignore" },
    );
  }

  /** kill -9 every member (by the PIDs we started), keeping their data: the whole store is down. */
  async kill(): Promise<void> {
    for (const m of this.members) {
      if (m.proc?.pid) process.kill(m.proc.pid, "SIGKILL");
      await m.proc?.catch(() => {});
      m.proc = undefined;
    }
  }

  /** Starts the killed members again on their data and ports; resolves once the cluster is healthy. */
  async restart(): Promise<void> {
    const cluster = this.members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
    for (const m of this.members) this.spawn(m, cluster, "existing");
    await waitFor("etcd to be healthy again", async () => (await this.etcdctl(["endpoint", "health", "--cluster"])).code === 0, 30_000, 200);
  }

  /** The store's current revision (etcd's header revision). */
  async revision(): Promise<string> {
    const r = await this.etcdctl(["endpoint", "status", "-w", "json"]);
    if (r.code !== 0) throw new Error(`etcdctl endpoint status: ${r.stderr.trim()}`);
    return String((JSON.parse(r.stdout) as { Status: { header: { revision: number } } }[])[0]!.Status.header.revision);
  }

  /** The members' client ports, for a test's own proxy in front of them. */
  get clientPorts(): number[] {
    return this.members.map((m) => m.client);
  }

  /** etcdctl against every member; on a TLS cluster as root. */
  etcdctl(args: string[]) {
    return run([
      "etcdctl",
      `--endpoints=${this.endpoints.join(",")}`,
      ...(this.pki ? ["--cacert", this.pki.ca.cert, "--cert", this.root!.cert, "--key", this.root!.key] : []),
      "--dial-timeout=2s",
      "--command-timeout=3s",
      ...args,
    ]);
  }

  /** Stops every member (by the PIDs we started) and deletes the data. */
  async stop(): Promise<void> {
    for (const m of this.members) {
      if (m.proc?.pid) {
        try {
          process.kill(m.proc.pid, "SIGKILL");
        } catch {
          /* gone */
        }
        await m.proc.catch(() => {});
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
