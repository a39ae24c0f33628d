import type { Diagnostic, SourcePos } from "../../src/core/diagnostics.js";
import type { LiveReader } from "../../src/core/live-reader.js";
import type { Change } from "../../src/core/resource.js";
import { clangArgv, parseClangErrors, programsBySection } from "./compile.js";
import { cacheDir, cachedObject } from "./read.js";

/**
 * Before a program is loaded: its object in the cache under its digest (compiled from the C
 * source, or copied, so a rollback can load the same bytes again even after the file changed),
 * and the one function its section holds (what `bpftool prog loadall` pins it as). A source
 * that does not compile, or an object without the section, is an error at the config's or the
 * C file's position, and nothing is written to the kernel.
 */
export async function prepareObjects(
  changes: Change[],
  io: LiveReader,
): Promise<{ diagnostics: Diagnostic[]; prepared: Map<string, Record<string, unknown>> }> {
  const diagnostics: Diagnostic[] = [];
  const prepared = new Map<string, Record<string, unknown>>();
  const run = (argv: string[]) => io.runner.run(argv);
  const wanted = changes.filter((c) => c.after && (!c.before || c.before.spec.program !== c.after.spec.program));
  if (!wanted.length) return { diagnostics, prepared };
  const mk = await run(["mkdir", "-p", cacheDir()]);
  if (mk.code !== 0)
    return { diagnostics: [{ severity: "error", message: `cannot create the eBPF object cache ${cacheDir()}: ${mk.stderr.trim()}` }], prepared };
  for (const c of wanted) {
    const a = c.after!;
    const what = `ebpf program "${a.name}"`;
    const file = String(a.data!.file);
    const fileAt = a.data!.fileAt as SourcePos;
    const obj = cachedObject(a.spec.program!);
    if ((await run(["test", "-s", obj])).code !== 0) {
      const tmp = `${obj}.${process.pid}.tmp`;
      const made = await run(a.data!.compile ? clangArgv(file, tmp) : ["cp", "--", file, tmp]);
      if (made.code !== 0) {
        const errs = a.data!.compile ? parseClangErrors(made.stderr, `${what}: ${file} does not compile`) : [];
        diagnostics.push(
          ...(errs.length
            ? errs
            : [
                {
                  severity: "error" as const,
                  message: `${what}: ${a.data!.compile ? "clang" : "copying"} ${file} failed: ${made.stderr.trim()}`,
                  source: fileAt,
                },
              ]),
        );
        await run(["rm", "-f", "--", tmp]);
        continue;
      }
      await run(["mv", "-f", "--", tmp, obj]);
    }
    const syms = await run(["llvm-objdump", "-t", obj]);
    if (syms.code !== 0) {
      diagnostics.push({ severity: "error", message: `${what}: ${file} is not a BPF object llvm-objdump can read: ${syms.stderr.trim()}`, source: fileAt });
      continue;
    }
    const sections = programsBySection(syms.stdout);
    const section = String(a.data!.section);
    const fns = sections.get(section);
    if (!fns?.length) {
      diagnostics.push({
        severity: "error",
        message: `${what}: ${file} has no program section "${section}" (its program sections: ${[...sections.keys()].join(", ") || "none"})`,
        source: a.data!.sectionAt as SourcePos,
      });
      continue;
    }
    if (fns.length > 1) {
      diagnostics.push({
        severity: "error",
        message: `${what}: section "${section}" of ${file} holds ${fns.length} programs (${fns.join(", ")}); bolt attaches one: give each its own SEC()`,
        source: a.data!.sectionAt as SourcePos,
      });
      continue;
    }
    prepared.set(c.id, { object: obj, fn: fns[0] });
  }
  return { diagnostics, prepared };
}
