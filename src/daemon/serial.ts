import type { Ns } from "../exec/runner.js";
import type { ApiController } from "./api-server.js";

/**
 * `bolt daemon`'s stand-in for the watch controller: no passes, only the API's writes, one at
 * a time in arrival order (one writer per target inside the process; the target lock keeps
 * other processes out).
 */
export class SerialController implements ApiController {
  private tail: Promise<void> = Promise.resolve();
  private writes = 0;
  private lastWriteAt: string | undefined;

  constructor(private readonly target: Ns) {}

  async runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    try {
      await previous;
      return await fn();
    } finally {
      release();
    }
  }

  enqueue(): void {
    this.writes++;
    this.lastWriteAt = new Date().toISOString();
  }

  health(): { healthy: boolean; body: unknown } {
    return { healthy: true, body: { status: "ok", target: this.target, writes: this.writes, last_write_at: this.lastWriteAt ?? null } };
  }

  /** Waits for the writes queued so far. */
  async drain(): Promise<void> {
    await this.tail;
  }
}
