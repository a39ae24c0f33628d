import type { Change, OpLine, RenderedOp, Resource } from "../../src/core/resource.js";
import type { Ns } from "../../src/exec/runner.js";
import { progType } from "./intent.js";
import type { Attach } from "./intent.js";
import { BPFFS, EBPF_TC, cachedObject, mapsDir, pinBase, pinDir } from "./read.js";

/**
 * The writes of a program. Loading and pinning run outside the target (bpffs is the host mount
 * namespace's); attaching runs inside it through `nsenter --net` only, because `ip -n`,
 * `tc -n` and `ip netns exec` remount /sys, and the pin would not be found under the new one.
 */
const exec = (args: string[]): OpLine => ({ tool: "exec", ns: null, args });
const inNet = (t: Ns, argv: string[]): OpLine => exec(t === null ? argv : ["nsenter", `--net=/run/netns/${t}`, "--", ...argv]);

export interface Placed {
  interface: string;
  attach: Attach;
  mode: string;
}

const placed = (r: Resource): Placed | undefined =>
  r.spec.interface ? { interface: r.spec.interface, attach: r.spec.attach as Attach, mode: r.spec.mode! } : undefined;
const samePlace = (a: Placed, b: Placed) => a.interface === b.interface && a.attach === b.attach && a.mode === b.mode;
const fnOf = (r: Resource) => String(r.data?.fn ?? "");
const progPin = (t: Ns, r: Resource) => `${pinDir(t, r.name, r.spec.program!)}/${fnOf(r)}`;

function load(t: Ns, name: string, digest: string, attach: Attach, object: string): OpLine[] {
  return [
    exec(["mkdir", "-p", `${pinBase(t)}/${name}`]),
    exec(["bpftool", "prog", "loadall", object, pinDir(t, name, digest), "type", progType(attach), "pinmaps", mapsDir(t, name, digest)]),
  ];
}

const unpin = (t: Ns, name: string, digest: string) => exec(["rm", "-rf", "--", pinDir(t, name, digest), mapsDir(t, name, digest)]);

/** Empty directories of this target's pin tree, and the tree itself when it is empty: idempotent (a destroy renders it once per program). */
export function tidy(t: Ns): OpLine {
  const base = pinBase(t);
  return exec(["find", `${BPFFS}/bolt`, "-mindepth", "1", "(", "-path", base, "-o", "-path", `${base}/*`, ")", "-empty", "-delete"]);
}

/** Attaches a pinned program; `replace`: one already there is swapped in the same kernel call (no moment without a program). */
function attachLine(t: Ns, r: Resource, p: Placed, replace: boolean): OpLine {
  if (p.attach === "xdp")
    return inNet(t, [
      "ip",
      ...(replace ? ["-force"] : []),
      "link",
      "set",
      "dev",
      p.interface,
      p.mode === "native" ? "xdpdrv" : "xdpgeneric",
      "pinned",
      progPin(t, r),
    ]);
  // `filter replace` at bolt's preference and handle swaps the classifier's program in place (cls_bpf change).
  return inNet(t, ["tc", "filter", "replace", ...hook(p), "bpf", "direct-action", "object-pinned", progPin(t, r)]);
}

function detachLine(t: Ns, p: Placed): OpLine {
  if (p.attach === "xdp") return inNet(t, ["ip", "link", "set", "dev", p.interface, p.mode === "native" ? "xdpdrv" : "xdpgeneric", "off"]);
  return inNet(t, ["tc", "filter", "del", ...hook(p), "bpf"]);
}

function hook(p: Placed): string[] {
  return ["dev", p.interface, p.attach === "tc-ingress" ? "ingress" : "egress", "pref", String(EBPF_TC.pref), "handle", EBPF_TC.handle, "protocol", "all"];
}

const phaseOf = (p: Placed) => (p.attach === "xdp" ? "xdp" : "tc");

/** Loads of a program version again, from the object cached under its digest (a rollback's undo of an unpin). */
function reload(t: Ns, r: Resource): OpLine[] {
  return load(t, r.name, r.spec.program!, r.spec.attach as Attach, cachedObject(r.spec.program!));
}

export function renderProgram(change: Change, t: Ns, prepared: Record<string, unknown> | undefined): RenderedOp[] {
  const after = change.action === "delete" ? undefined : change.after!;
  const before = change.action === "create" ? undefined : change.before;
  const ops: RenderedOp[] = [];
  if (!after) {
    const b = before!;
    const p = placed(b);
    if (p) ops.push({ ...detachLine(t, p), phase: phaseOf(p), destroy: true, undo: [attachLine(t, b, p, false)] });
    ops.push({ ...exec(["rm", "-rf", "--", `${pinBase(t)}/${b.name}`]), phase: "pins", destroy: true, undo: reload(t, b) });
    ops.push({ ...tidy(t), phase: "pins", destroy: true, undo: [] });
    return ops;
  }
  // What prepare found in the object: the cached file and the function the section holds.
  const object = String(prepared?.object ?? "");
  const next: Resource = { ...after, data: { ...after.data, fn: prepared?.fn ?? before?.data?.fn } };
  const p = placed(next)!;
  const was = before ? placed(before) : undefined;
  const newProgram = !before || before.spec.program !== after.spec.program;
  if (newProgram) {
    const [mkdir, loadall] = load(t, after.name, after.spec.program!, p.attach, object);
    ops.push({ ...mkdir!, phase: "pins", undo: [tidy(t)] });
    ops.push({ ...loadall!, phase: "pins", undo: [unpin(t, after.name, after.spec.program!)] });
  }
  const inPlace = !!was && samePlace(was, p);
  if (was && !inPlace) ops.push({ ...detachLine(t, was), phase: phaseOf(was), destroy: true, undo: [attachLine(t, before!, was, false)] });
  if (newProgram || !inPlace)
    ops.push({ ...attachLine(t, next, p, inPlace), phase: phaseOf(p), undo: [inPlace ? attachLine(t, before!, was!, true) : detachLine(t, p)] });
  // The superseded version goes once the new one runs; undone by loading it again from its cached object.
  if (before && newProgram) ops.push({ ...unpin(t, before.name, before.spec.program!), phase: "unpin", undo: reload(t, before) });
  return ops;
}
