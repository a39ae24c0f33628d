import type { Ns } from "./runner.js";

/** A single kernel write: one `ip -batch` line or one argv, with the tool that runs it. */
export interface OpLine {
  /** a tool of the registry in tools.ts: "ip" (one `ip -batch` line), "wg" ([ifname, …one `wg set` peer clause]), "exec" (an argv) */
  tool: string;
  ns: Ns;
  args: string[];
  /** standard input of an exec'd command (an `nft -f -` transaction) */
  stdin?: string;
}

/** Ops for one tool in one namespace, run by one tool invocation (or a chain of them). */
export interface Batch<T extends OpLine = OpLine> {
  tool: string;
  ns: Ns;
  ops: T[];
}
