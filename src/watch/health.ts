import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { healthFile, readLbDown } from "../core/lb-health.js";
import type { HealthFile, Probe } from "../core/lb-health.js";
import { inNetns } from "../exec/runner.js";
import type { CommandRunner, Ns } from "../exec/runner.js";

/**
 * Load-balancer health checks, run by the daemon from inside the target namespace (where the
 * VIP's traffic is balanced, so a probe takes the path a client's connection takes to the
 * backend). HAProxy's model: a backend that fails `fall` probes in a row is down and leaves
 * the verdict map; one that passes `rise` in a row is up again. The verdict is kept in a small
 * runtime file per target (tmpfs: a reboot forgets it, and every backend starts healthy) that
 * planning reads, so `bolt plan` shows what the daemon would apply; a change of health asks
 * the daemon for a pass, which rewrites the map in one nft transaction.
 */
function writeLbHealth(t: Ns, health: HealthState): void {
  const path = healthFile(t);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const file: HealthFile = { down: health.down(), updated: new Date().toISOString(), backends: health.backends() };
  writeFileSync(tmp, `${JSON.stringify(file)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/**
 * One probe round in one process inside the namespace: node connects to each backend (TCP) or
 * sends a GET (HTTP, healthy on 2xx/3xx), each with its timeout, and prints one JSON object of
 * results. (The daemon cannot enter a namespace itself: Node has no setns.)
 */
const PROBE_SCRIPT = `
const net=require("net"),http=require("http");
const probes=JSON.parse(process.argv[1]);
const one=(p)=>new Promise((done)=>{
  const t=setTimeout(()=>finish(false),p.timeoutMs);let over=false;
  const finish=(ok)=>{if(over)return;over=true;clearTimeout(t);try{s&&s.destroy()}catch{};try{r&&r.destroy()}catch{};done(ok)};
  let s,r;
  if(p.method==="http"){r=http.get({host:p.addr,port:p.port,path:p.path,timeout:p.timeoutMs},(res)=>{res.resume();finish(res.statusCode>=200&&res.statusCode<400)});r.on("error",()=>finish(false));}
  else{s=net.connect({host:p.addr,port:p.port},()=>finish(true));s.on("error",()=>finish(false));}
});
Promise.all(probes.map(one)).then((r)=>{const o={};probes.forEach((p,i)=>o[p.id]=r[i]);process.stdout.write(JSON.stringify(o))});
`;

export async function probeOnce(runner: CommandRunner, t: Ns, probes: Probe[]): Promise<Map<string, boolean>> {
  const strip = probes.map(({ id, method, addr, port, path, timeoutMs }) => ({ id, method, addr, port, path, timeoutMs }));
  const limit = Math.max(...probes.map((p) => p.timeoutMs)) + 5000;
  const r = await runner.run(inNetns(t, [process.execPath, "-e", PROBE_SCRIPT, JSON.stringify(strip)]), undefined, { timeoutMs: limit });
  const out = new Map<string, boolean>();
  let parsed: Record<string, boolean> = {};
  try {
    parsed = JSON.parse(r.stdout) as Record<string, boolean>;
  } catch {
    // The probe process itself failed: no verdict this round (a broken prober is not a dead backend).
    return out;
  }
  for (const p of probes) if (typeof parsed[p.id] === "boolean") out.set(p.id, parsed[p.id]!);
  return out;
}

/** Rise/fall counting over probe results; says which backends changed state. */
export class HealthState {
  private readonly state = new Map<string, { up: boolean; streak: number; since: string }>();

  constructor(
    initiallyDown: string[] = [],
    private readonly now: () => Date = () => new Date(),
  ) {
    for (const id of initiallyDown) this.state.set(id, { up: false, streak: 0, since: this.now().toISOString() });
  }

  /** Feeds one round; returns true when some backend went up or down. */
  observe(probes: Probe[], results: Map<string, boolean>): boolean {
    let changed = false;
    const ids = new Set(probes.map((p) => p.id));
    for (const id of [...this.state.keys()]) if (!ids.has(id)) this.state.delete(id);
    for (const p of probes) {
      const ok = results.get(p.id);
      if (ok === undefined) continue;
      const s = this.state.get(p.id) ?? { up: true, streak: 0, since: this.now().toISOString() };
      if (ok === s.up) s.streak = 0;
      else if (++s.streak >= (s.up ? p.fall : p.rise)) {
        s.up = ok;
        s.streak = 0;
        s.since = this.now().toISOString();
        changed = true;
      }
      this.state.set(p.id, s);
    }
    return changed;
  }

  /** Every backend's verdict and when it last changed. */
  backends(): Record<string, { up: boolean; since: string }> {
    return Object.fromEntries([...this.state].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, s]) => [id, { up: s.up, since: s.since }]));
  }

  down(): string[] {
    return [...this.state]
      .filter(([, s]) => !s.up)
      .map(([id]) => id)
      .sort();
  }
}

/**
 * The daemon's checker: probes every `interval` (the shortest among the configured checks),
 * records the verdict and calls `onChange` when a backend went up or down. `setProbes` is
 * called after every pass with what the current config asks for.
 */
export class HealthChecker {
  private probes: Probe[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly health: HealthState;
  private running = false;
  /** the backend ids the runtime file lists */
  private recorded: string | undefined;

  constructor(
    private readonly runner: CommandRunner,
    private readonly target: Ns,
    private readonly onChange: (down: string[]) => void,
  ) {
    this.health = new HealthState(readLbDown(target));
  }

  setProbes(probes: Probe[]): void {
    const before = JSON.stringify(this.probes);
    this.probes = probes;
    if (JSON.stringify(probes) === before && (this.timer || !probes.length)) return;
    this.stop();
    if (!probes.length) {
      // No checks configured: nothing is down any more.
      if (this.health.down().length) {
        this.health.observe([], new Map());
        writeLbHealth(this.target, this.health);
        this.onChange([]);
      }
      return;
    }
    const every = Math.min(...probes.map((p) => p.intervalMs));
    this.timer = setInterval(() => void this.round(), every);
    this.timer.unref?.();
    void this.round();
  }

  private async round(): Promise<void> {
    if (this.running || !this.probes.length) return;
    this.running = true;
    try {
      const probes = this.probes;
      const results = await probeOnce(this.runner, this.target, probes);
      const changed = this.health.observe(probes, results);
      // The file lists every backend's verdict (bolt show): rewritten when one went up or down,
      // or when the probed set changed (a first verdict of "up" moves nothing in the map).
      const ids = Object.keys(this.health.backends()).join();
      if (changed || ids !== this.recorded) {
        writeLbHealth(this.target, this.health);
        this.recorded = ids;
      }
      if (changed) this.onChange(this.health.down());
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
