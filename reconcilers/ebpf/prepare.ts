import type { Diagnostic, SourcePos } from "../../src/core/diagnostics.js";
import type { LiveReader } from "../../src/core/live-reader.js";
import type { Change } from "../../src/core/resource.js";
import type { CommandRunner } from "../../src/exec/runner.js";
import { clangArgv, parseClangErrors, programsBySection } from "./compile.js";
import { cacheDir, cachedObject } from "./read.js";

/**
 * Before a program is loaded: its object in the cache under its digest (compiled from the C
 * source, or copied, so a rollback can load the same bytes again even after the file changed),
 * and the one function its section holds (what `bpftool prog loadall` pins it as). A source
 * that does not compile, or an object without the section, is an error at the config's or the
 * C file's position, and nothing is written to the kernel.
 */
export interface ObjectInput {
  name: string;
  file: string;
  compile: boolean;
  digest: string;
  section: string;
  fileAt: SourcePos;
  sectionAt: SourcePos;
}

/** Compiles or copies one program's object into the cache and finds its section's function. */
export async function ensureObject(p: ObjectInput, runner: CommandRunner): Promise<{ diagnostics: Diagnostic[]; object?: string; fn?: string }> {
  const run = (argv: string[]) => runner.run(argv);
  const what = `ebpf program "${p.name}"`;
  const fail = (message: string, source: SourcePos) => ({ diagnostics: [{ severity: "error" as const, message, source }] });
  const mk = await run(["mkdir", "-p", cacheDir()]);
  if (mk.code !== 0) return fail(`${what}: cannot create the eBPF object cache ${cacheDir()}: ${mk.stderr.trim()}`, p.fileAt);
  const obj = cachedObject(p.digest);
  if ((await run(["test", "-s", obj])).code !== 0) {
    const tmp = `${obj}.${process.pid}.tmp`;
    const made = await run(p.compile ? clangArgv(p.file, tmp) : ["cp", "--", p.file, tmp]);
    if (made.code !== 0) {
      await run(["rm", "-f", "--", tmp]);
      const errs = p.compile ? parseClangErrors(made.stderr, `${what}: ${p.file} does not compile`) : [];
      return errs.length ? { diagnostics: errs } : fail(`${what}: ${p.compile ? "clang" : "copying"} ${p.file} failed: ${made.stderr.trim()}`, p.fileAt);
    }
    await run(["mv", "-f", "--", tmp, obj]);
  }
  const syms = await run(["llvm-objdump", "-t", obj]);
  if (syms.code !== 0) return fail(`${what}: ${p.file} is not a BPF object llvm-objdump can read: ${syms.stderr.trim()}`, p.fileAt);
  const sections = programsBySection(syms.stdout);
  const fns = sections.get(p.section);
  if (!fns?.length)
    return fail(`${what}: ${p.file} has no program section "${p.section}" (its program sections: ${[...sections.keys()].join(", ") || "none"})`, p.sectionAt);
  if (fns.length > 1)
    return fail(
      `${what}: section "${p.section}" of ${p.file} holds ${fns.length} programs (${fns.join(", ")}); bolt attaches one: give each its own SEC()`,
      p.sectionAt,
    );
  return { diagnostics: [], object: obj, fn: fns[0] };
}

export async function prepareObjects(
  changes: Change[],
  io: LiveReader,
): Promise<{ diagnostics: Diagnostic[]; prepared: Map<string, Record<string, unknown>> }> {
  const diagnostics: Diagnostic[] = [];
  const prepared = new Map<string, Record<string, unknown>>();
  for (const c of changes) {
    const a = c.after;
    if (!a || (c.before && c.before.spec.program === a.spec.program)) continue;
    const d = a.data!;
    const r = await ensureObject(
      {
        name: a.name,
        file: String(d.file),
        compile: !!d.compile,
        digest: a.spec.program!,
        section: String(d.section),
        fileAt: d.fileAt as SourcePos,
        sectionAt: d.sectionAt as SourcePos,
      },
      io.runner,
    );
    diagnostics.push(...r.diagnostics);
    if (r.object) prepared.set(c.id, { object: r.object, fn: r.fn });
  }
  return { diagnostics, prepared };
}
