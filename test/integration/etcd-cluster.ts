// A throwaway 3-member etcd cluster on loopback for the mesh-store tests (issue 10): Debian's
// etcd-server, ports chosen per run, data in a temp dir, members stopped by PID at the end.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import type { ResultPromise } from "execa";
import { run } from "./harness.js";
import { freePort, waitFor } from "./watch-helpers.js";

export class EtcdCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "bolt-etcd-"));
  private readonly members: { name: string; client: number; peer: number; proc?: ResultPromise }[] = [];

  /** etcd://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 */
  get url(): string {
    return `etcd://${this.members.map((m) => `127.0.0.1:${m.client}`).join(",")}`;
  }

  async start(n = 3): Promise<void> {
    for (let i = 0; i < n; i++) this.members.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
    const cluster = this.members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
    for (const m of this.members) this.spawn(m, cluster, "new");
    await waitFor("etcd to elect a leader", async () => (await this.etcdctl(["endpoint", "health", "--cluster"])).code === 0, 30_000, 200);
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
        `http://127.0.0.1:${m.client}`,
        "--advertise-client-urls",
        `http://127.0.0.1:${m.client}`,
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
      ],
      { reject: false, stdout: "ignore", stderr: "ignore" },
    );
  }

  etcdctl(args: string[]) {
    return run([
      "etcdctl",
      `--endpoints=${this.members.map((m) => `http://127.0.0.1:${m.client}`).join(",")}`,
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
