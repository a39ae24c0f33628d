import type { CommandRunner, RunResult } from "./runner.js";

/**
 * A fake runner for tests: each expectation matches a command (argv joined by spaces and,
 * for batches, each stdin line) and returns a canned result. Anything unexpected fails
 * loudly, like knftables' fake execer.
 */
export interface ScriptedCall {
  argv: string[];
  stdin?: string;
}

export type Responder = (call: ScriptedCall) => RunResult | undefined;

export class ScriptedRunner implements CommandRunner {
  readonly calls: ScriptedCall[] = [];
  constructor(private readonly responders: Responder[]) {}

  async run(argv: string[], stdin?: string): Promise<RunResult> {
    const call = { argv, stdin };
    this.calls.push(call);
    for (const r of this.responders) {
      const out = r(call);
      if (out) return out;
    }
    throw new Error(`ScriptedRunner: unexpected command: ${argv.join(" ")}${stdin ? `\n${stdin}` : ""}`);
  }
}

export const ok = (stdout = ""): RunResult => ({ stdout, stderr: "", code: 0 });
