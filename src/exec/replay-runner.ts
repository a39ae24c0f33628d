import type { CommandRunner, RunResult } from "./runner.js";

/**
 * A recorded kernel for tests and golden plan cases. Reads are answered from a map of
 * recorded outputs keyed by argv joined with single spaces (`ip -n bolt-t-g -j -d link show`);
 * a read that was not recorded throws, so a planner that starts reading something new fails
 * loudly instead of planning against made-up state. Writes (`ip … -batch -`, `sysctl … -w …`)
 * change nothing here: they are kept in `writes`, in call order, and answered with success.
 */
export interface RecordedOutput {
  stdout: string;
  stderr?: string;
  code?: number;
}

export interface RecordedWrite {
  argv: string[];
  stdin?: string;
}

export class ReplayRunner implements CommandRunner {
  readonly writes: RecordedWrite[] = [];
  private readonly outputs: Map<string, RecordedOutput>;

  constructor(outputs: Record<string, RecordedOutput> | Map<string, RecordedOutput>) {
    this.outputs = outputs instanceof Map ? new Map(outputs) : new Map(Object.entries(outputs));
  }

  /** A command that changes the kernel: batches for ip, `-w` for sysctl. */
  static isWrite(argv: string[]): boolean {
    if (argv.includes("-batch")) return true;
    const i = argv.indexOf("sysctl");
    return i >= 0 && argv.slice(i + 1).includes("-w");
  }

  async run(argv: string[], stdin?: string): Promise<RunResult> {
    if (ReplayRunner.isWrite(argv)) {
      this.writes.push(stdin === undefined ? { argv } : { argv, stdin });
      return { stdout: "", stderr: "", code: 0 };
    }
    const key = argv.join(" ");
    const rec = this.outputs.get(key);
    if (!rec) throw new Error(`ReplayRunner: no recorded output for: ${key}`);
    return { stdout: rec.stdout, stderr: rec.stderr ?? "", code: rec.code ?? 0 };
  }
}
