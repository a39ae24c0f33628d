// One `bolt watch` per mesh host, as the store tests run them: the host's file, its namespace
// and state dir, a 1 s resync, a 100 ms debounce, /healthz on a free loopback port, JSON logs
// kept per host. Stopped by the PIDs started here.
import { execa } from "execa";
import type { ResultPromise } from "execa";
import { BOLT_BIN } from "./harness.js";
import type { Json } from "./harness.js";
import type { HostId, MeshLab } from "./mesh-topology.js";
import { freePort, httpGet, logLines, sleep, waitFor } from "./watch-helpers.js";

export class MeshDaemons {
  private readonly daemons = new Map<HostId, { proc: ResultPromise; port: number; log: string[] }>();

  constructor(private readonly lab: MeshLab) {}

  /** Starts h's daemon on `file` and waits for its first pass. */
  async start(h: HostId, file: string, o: { resync?: string } = {}): Promise<void> {
    const port = await freePort();
    const args = ["watch", "-f", file, "--netns", this.lab.ns(h), "--state-dir", this.lab.stateDir(h), "--resync", o.resync ?? "1s"];
    const proc = execa("node", [BOLT_BIN, ...args, "--debounce", "100ms", "--metrics-listen", `127.0.0.1:${port}`, "--json"], { reject: false });
    const log: string[] = [];
    proc.stdout?.on("data", (d: Buffer) => log.push(d.toString()));
    proc.stderr?.on("data", (d: Buffer) => log.push(d.toString()));
    this.daemons.set(h, { proc, port, log });
    await waitFor(`${h}'s first pass`, async () => (await this.health(h)).last_pass, 20_000);
  }

  /** h's /healthz body. */
  async health(h: HostId): Promise<Json> {
    return JSON.parse((await httpGet(`http://127.0.0.1:${this.daemons.get(h)!.port}/healthz`)).body) as Json;
  }

  /** Waits until h's daemon reports healthy, else fails with its last pass. */
  async converged(h: HostId, timeoutMs = 10_000): Promise<void> {
    await waitFor(`${h}'s daemon to converge`, async () => (await this.health(h)).status === "ok", timeoutMs).catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify((await this.health(h)).last_pass)}`);
    });
  }

  /** Everything h's daemon printed so far. */
  log(h: HostId): string {
    return this.daemons.get(h)!.log.join("");
  }

  /** h's pass reports so far (its JSON log lines with msg "pass"; each has its log `time`). */
  passes(h: HostId): Json[] {
    const text = this.log(h);
    // Only whole lines: the last chunk may end inside one.
    return logLines(text.slice(0, text.lastIndexOf("\n") + 1)).filter((l) => l.msg === "pass") as Json[];
  }

  running(): HostId[] {
    return [...this.daemons.keys()];
  }

  async stop(h: HostId, sig: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const d = this.daemons.get(h);
    if (!d) return;
    if (d.proc.pid) process.kill(d.proc.pid, sig);
    await Promise.race([d.proc, sleep(5000)]);
    this.daemons.delete(h);
  }

  async stopAll(): Promise<void> {
    for (const h of this.running()) await this.stop(h);
  }
}
