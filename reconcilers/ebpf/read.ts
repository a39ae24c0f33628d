import type { Ns } from "../../src/exec/runner.js";
import { RUN_DIR } from "../../src/exec/run-dir.js";

/**
 * Where bolt's programs live and how they are recognised from the kernel alone: every program
 * bolt loads is pinned at /sys/fs/bpf/bolt/TARGET/NAME/DIGEST/FUNCTION (its maps beside it in
 * DIGEST_maps/), and a tc program of bolt's sits at preference 0xb0b0, handle 1. bpffs is one
 * per mount namespace, not per network namespace, so pins are made and read outside the target
 * (`ip netns exec` remounts /sys without it); attachments are read inside it.
 */
export const BPFFS = "/sys/fs/bpf";
export const EBPF_TC = { pref: 45232, handle: "1" };

export const pinBase = (target: Ns) => `${BPFFS}/bolt/${target === null ? "host" : target.replaceAll(".", "_")}`;
export const pinDir = (target: Ns, name: string, digest: string) => `${pinBase(target)}/${name}/${digest}`;
/** bpffs refuses "." in names: the maps directory is DIGEST_maps */
export const mapsDir = (target: Ns, name: string, digest: string) => `${pinDir(target, name, digest)}_maps`;
/** Compiled and copied objects by digest: they live as long as the pins do (tmpfs and bpffs both end at reboot), for rollback's re-load. */
export const cacheDir = () => `${RUN_DIR()}/ebpf`;
export const cachedObject = (digest: string) => `${cacheDir()}/${digest}.o`;

/** The subset of `bpftool -j -f prog show` bolt reads. */
export interface BpfProg {
  id: number;
  type: string;
  name: string;
  tag?: string;
  /** only while kernel.bpf_stats_enabled = 1 */
  run_cnt?: number;
  run_time_ns?: number;
  map_ids?: number[];
  pinned?: string[];
}

/** `bpftool -j net show` in a network namespace: XDP and tc attachments. */
export interface BpfNet {
  xdp?: { devname: string; ifindex: number; mode: string; id: number }[];
  tc?: { devname: string; ifindex: number; kind: string; name?: string; id: number }[];
}

export interface PinnedProgram {
  name: string;
  digest: string;
  fn: string;
  prog: BpfProg;
}

/** bolt's programs of one target: the ones pinned at BASE/NAME/DIGEST/FUNCTION. */
export function pinnedPrograms(progs: BpfProg[], base: string): PinnedProgram[] {
  const out: PinnedProgram[] = [];
  for (const p of progs)
    for (const path of p.pinned ?? []) {
      if (!path.startsWith(`${base}/`)) continue;
      const parts = path.slice(base.length + 1).split("/");
      if (parts.length !== 3 || !/^[0-9a-f]{16}$/.test(parts[1]!)) continue;
      out.push({ name: parts[0]!, digest: parts[1]!, fn: parts[2]!, prog: p });
    }
  return out;
}

/** Where the kernel has a program attached in the namespace, by program id. */
export interface Attachment {
  interface: string;
  attach: "xdp" | "tc-ingress" | "tc-egress";
  /** xdp: native (driver) or generic (skb) */
  mode: string;
  id: number;
}

export function attachments(net: BpfNet[]): Attachment[] {
  const out: Attachment[] = [];
  for (const n of net) {
    for (const x of n.xdp ?? []) out.push({ interface: x.devname, attach: "xdp", mode: x.mode === "driver" ? "native" : x.mode, id: x.id });
    for (const t of n.tc ?? []) {
      const dir = t.kind.endsWith("/ingress") ? "tc-ingress" : t.kind.endsWith("/egress") ? "tc-egress" : undefined;
      if (dir) out.push({ interface: t.devname, attach: dir, mode: "-", id: t.id });
    }
  }
  return out;
}

/** One map's entries as text: `counts: 0=12 1=5` (BTF-formatted when the object had BTF, else hex bytes). */
export function mapText(name: string, dump: unknown): string {
  const entries = Array.isArray(dump) ? (dump as { key?: string[]; value?: string[]; formatted?: { key: unknown; value: unknown } }[]) : [];
  const hex = (b: string[] | undefined) => (b ?? []).map((x) => x.replace(/^0x/, "")).join("");
  const fmt = (v: unknown) => (typeof v === "object" ? JSON.stringify(v) : String(v));
  const shown = entries.map((e) => (e.formatted ? `${fmt(e.formatted.key)}=${fmt(e.formatted.value)}` : `0x${hex(e.key)}=0x${hex(e.value)}`));
  return `${name}: ${shown.length ? shown.join(" ") : "(empty)"}`;
}

/** The answers of `bpftool -j batch file -` (`map show id N`, `map dump id N` per map) as map texts by id. */
export function mapsFromBatch(batch: unknown): Map<number, string> {
  const out = new Map<number, string>();
  const items = Array.isArray(batch) ? (batch as { command?: string[]; output?: unknown }[]) : [];
  for (let i = 0; i + 1 < items.length; i += 2) {
    const show = items[i]!.output as { id?: number; name?: string } | undefined;
    if (show?.id === undefined) continue;
    out.set(show.id, mapText(show.name ?? `map ${show.id}`, items[i + 1]!.output));
  }
  return out;
}
