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

  /** `ip … -j -batch -` whose every line is a read (`show`, `list`, `get`): answered line by line. */
  static isReadBatch(argv: string[], stdin?: string): boolean {
    if (!argv.includes("-batch") || !argv.includes("-j") || stdin === undefined) return false;
    return stdin
      .split("\n")
      .filter((l) => l.trim())
      .every((l) => /^\S+ (show|list|get)\b/.test(l));
  }

  async run(argv: string[], stdin?: string): Promise<RunResult> {
    if (ReplayRunner.isReadBatch(argv, stdin)) {
      // Each line as the single read `ip [-n NS] -j LINE` that was recorded.
      const force = argv.includes("-force");
      const head = argv.slice(0, argv.indexOf("-batch")).filter((a) => a !== "-force");
      const out: string[] = [];
      let stderr = "";
      for (const [k, line] of stdin!
        .split("\n")
        .filter((l) => l.trim())
        .entries()) {
        const r = await this.run([...head, ...line.split(" ")]);
        if (r.code !== 0) {
          stderr += `${r.stderr}Command failed -:${k + 1}\n`;
          if (!force) return { stdout: out.join(""), stderr, code: 1 };
          continue;
        }
        out.push(r.stdout.endsWith("\n") ? r.stdout : `${r.stdout}\n`);
      }
      return { stdout: out.join(""), stderr, code: stderr ? 1 : 0 };
    }
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
