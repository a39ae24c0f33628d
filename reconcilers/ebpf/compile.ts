import type { Diagnostic } from "../../src/core/diagnostics.js";

/**
 * Building a C source into a BPF object, and reading an object's program sections. clang 14
 * emits BPF ELF with `-target bpf`; asm/types.h lives in the multiarch include directory, which
 * a BPF target does not search by itself.
 */
export const CLANG_FLAGS = ["-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-fno-color-diagnostics"];

export function clangArgv(source: string, out: string): string[] {
  return ["clang", ...CLANG_FLAGS, "-c", source, "-o", out];
}

/** At most this many compiler errors become diagnostics (the first ones; clang stops at 20 itself). */
const MAX_ERRORS = 10;

const CLANG_LINE = /^(.+?):(\d+):(\d+): (fatal error|error): (.*)$/;

/** clang's `file:line:col: error: message` lines as diagnostics at the C file's position. */
export function parseClangErrors(stderr: string, what: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const line of stderr.split("\n")) {
    const m = CLANG_LINE.exec(line);
    if (!m) continue;
    out.push({ severity: "error", message: `${what}: ${m[5]}`, source: { file: m[1]!, line: Number(m[2]), col: Number(m[3]) } });
    if (out.length >= MAX_ERRORS) break;
  }
  return out;
}

/**
 * Function symbols per ELF section from `llvm-objdump -t`: a line is
 * `0000000000000000 g     F xdp	0000000000000150 xdp_drop`. The function's name is what
 * `bpftool prog loadall` pins the program as (libbpf names programs by their function).
 */
export function programsBySection(objdump: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of objdump.split("\n")) {
    const m = /^[0-9a-f]{16} g\s+F (\S+)\s+[0-9a-f]+ (\S+)$/.exec(line.trim());
    if (!m) continue;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}
