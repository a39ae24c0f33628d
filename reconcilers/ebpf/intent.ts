import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { SourcePos } from "../../src/core/diagnostics.js";
import { fragmentKey } from "../../src/core/intent.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import { pointer } from "../../src/config/positions.js";
import { ifnameProblem } from "../../src/config/names.js";
import { CLANG_FLAGS } from "./compile.js";

/**
 * `[[ebpf.programs]]`: a BPF object (or a C source bolt compiles with clang) attached at a
 * device's XDP hook or its clsact ingress/egress. The program's identity in the kernel is its
 * pin directory, named by a digest of what was loaded (object bytes or source + compiler
 * flags, section, program type): a changed program is a new digest, replaced atomically.
 */
export type Attach = "xdp" | "tc-ingress" | "tc-egress";

export interface ProgramIntent {
  name: string;
  interface: string;
  attach: Attach;
  /** XDP only: the config's mode; undefined = native where the device supports it, else generic */
  mode?: "native" | "generic";
  section: string;
  /** absolute path of the object, or of the C source compiled into one */
  objectFile?: string;
  sourceFile?: string;
  /** 16 hex: the pin directory's name and the cached object's */
  digest: string;
  /** where the entry starts in the config */
  source: SourcePos;
  /** where object/source and section are written */
  fileAt: SourcePos;
  sectionAt: SourcePos;
  modeAt?: SourcePos;
}

export interface EbpfIntent {
  programs: ProgramIntent[];
}

export const EBPF = fragmentKey<EbpfIntent>("ebpf", () => ({ programs: [] }));

/** The BPF program type `bpftool prog loadall` is told: what the kernel verifies it as. */
export function progType(attach: Attach): "xdp" | "classifier" {
  return attach === "xdp" ? "xdp" : "classifier";
}

/** What a program's digest covers: the bytes, how they become an object, and which program of it runs where. */
export function programDigest(bytes: Buffer, compiled: boolean, section: string, attach: Attach): string {
  const h = createHash("sha256");
  h.update(compiled ? `c\0${CLANG_FLAGS.join(" ")}\0` : "o\0");
  h.update(`${section}\0${progType(attach)}\0`);
  h.update(bytes);
  return h.digest("hex").slice(0, 16);
}

type Obj = Record<string, unknown>;

export const ebpfIntent: IntentHooks = {
  build(files, ctx: IntentContext): EbpfIntent | undefined {
    const programs: ProgramIntent[] = [];
    const names = new Map<string, SourcePos>();
    for (const f of files) {
      if (f.kind !== "boltfile") continue;
      const list = ((f.data.ebpf ?? {}) as Obj).programs as Obj[] | undefined;
      (list ?? []).forEach((raw, i) => {
        const at = (k: string) => f.positions.value(pointer(["ebpf", "programs", i, k]));
        const source = f.positions.key(pointer(["ebpf", "programs", i]));
        const name = String(raw.name);
        const what = `ebpf program "${name}"`;
        const seen = names.get(name);
        if (seen) return ctx.err(`${what} is defined twice (also at ${seen.file}:${seen.line})`, at("name"));
        names.set(name, at("name"));
        const ifname = String(raw.interface);
        const bad = ifnameProblem(ifname);
        if (bad) return ctx.err(`${what}: interface ${bad}`, at("interface"));
        const attach = String(raw.attach) as Attach;
        const mode = raw.mode === undefined ? undefined : (String(raw.mode) as "native" | "generic");
        if (mode && attach !== "xdp") return ctx.err(`${what}: mode is for attach = "xdp" only (a tc program runs on every device alike)`, at("mode"));
        const compiled = raw.source !== undefined;
        const key = compiled ? "source" : "object";
        const file = resolve(dirname(f.path), String(raw[key]));
        let bytes: Buffer;
        try {
          bytes = readFileSync(file);
        } catch (e) {
          const why = `${what}: cannot read ${key} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
          // Validating away from the target host (CI, the seeds' examples), as for missing key files: said, not fatal.
          if (ctx.opts.offline) {
            ctx.diagnostics.push({ severity: "warning", message: `${why} (not on this host: the program is not checked)`, source: at(key) });
            return;
          }
          return ctx.err(why, at(key));
        }
        // libbpf names a program's section by its type: "xdp" and "tc" are what clang's SEC() writes for these hooks.
        const section = raw.section === undefined ? (attach === "xdp" ? "xdp" : "tc") : String(raw.section);
        programs.push({
          name,
          interface: ifname,
          attach,
          mode,
          section,
          ...(compiled ? { sourceFile: file } : { objectFile: file }),
          digest: programDigest(bytes, compiled, section, attach),
          source,
          fileAt: at(key),
          sectionAt: raw.section === undefined ? at(key) : at("section"),
          modeAt: mode ? at("mode") : undefined,
        });
      });
    }
    return programs.length ? { programs } : undefined;
  },
  describe(frag) {
    const n = (frag as EbpfIntent | undefined)?.programs.length ?? 0;
    return n ? `${n} eBPF program(s)` : "";
  },
};
