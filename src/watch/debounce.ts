/** Timer functions, injectable so tests drive time. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * Collapses a burst of events into one call: `fn` runs `waitMs` after the last trigger, but
 * no later than `maxWaitMs` after the first one (an editor saving in a loop, or a kernel
 * emitting events continuously, must not postpone the pass forever).
 */
export class Debouncer {
  private timer: unknown;
  private first: number | undefined;

  constructor(
    private readonly fn: () => void,
    private readonly waitMs: number,
    private readonly maxWaitMs: number = Math.max(waitMs * 10, 2000),
    private readonly clock: Clock = realClock,
  ) {}

  /** `waitMs`: a shorter wait for this trigger (never longer than the configured one); a later trigger's own wait replaces it. */
  trigger(waitMs = this.waitMs): void {
    const now = this.clock.now();
    this.first ??= now;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    const delay = Math.max(0, Math.min(waitMs, this.waitMs, this.first + this.maxWaitMs - now));
    this.timer = this.clock.setTimeout(() => this.fire(), delay);
  }

  /** Run now (SIGHUP: the operator asked for it). */
  flush(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.fire();
  }

  cancel(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.first = undefined;
  }

  get pending(): boolean {
    return this.timer !== undefined;
  }

  private fire(): void {
    this.timer = undefined;
    this.first = undefined;
    this.fn();
  }
}
