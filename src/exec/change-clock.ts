/**
 * What tells the daemon that nothing it read can have changed: a counter that the kernel's
 * change events (`ip monitor`, `nft monitor`), every write and every resync advance, or
 * undefined while a monitor is not running (events may be lost). The read cache
 * (read-cache-runner.ts) keeps it; the plan memo (core/plan-memo.ts) asks it.
 */
export interface ChangeClock {
  now(): number | undefined;
  /** whether a command's answer is covered by the events ("cacheable"), changes nothing ("read") or may write */
  classify(argv: string[], stdin: string | undefined): "cacheable" | "read" | "write";
}
