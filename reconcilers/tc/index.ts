import { fragment } from "../../src/core/intent.js";
import type { IpLink } from "../../src/core/live-reader.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { OpLine, Reconciler, RenderedOp, Resource } from "../../src/core/resource.js";
import { inNetns, nsName } from "../../src/exec/runner.js";
import type { Ns } from "../../src/exec/runner.js";
import { decodeAlias, encodeAlias } from "../../src/core/ownership.js";
import { PRIORITIES, TC, TRAFFIC, trafficIntent } from "./intent.js";
import { EBPF } from "../ebpf/intent.js";
import type { ShaperIntent, TrafficIntent } from "./intent.js";
import { isDefaultRoot, parseHtbClasses, redirectTarget, splitBatchAnswer, splitClassDumps } from "./read.js";
import type { TcFilter, TcQdisc } from "./read.js";
import { tcRate } from "./rate.js";

/**
 * Traffic control objects in the target namespace, recognisable from the kernel alone: root
 * qdiscs with major b017 (HTB trees), ifb links whose alias is `bolt1,ifb=DEV`, their u32
 * redirect at preference 0xb017 on DEV's clsact ingress, and the clsact qdisc of a bolt device.
 */
type ShaperSpec = { rate: string; classes: string; leaf: string };

export const tcReconciler: Reconciler = {
  kind: "tc",
  // Devices first (bridges, endpoint veths); an ifb's tree before the redirect that feeds it.
  phases: {
    ifb: { after: ["network.link", "endpoint.inside", "wireguard.conf"] },
    clsact: { after: ["ifb"] },
    shape: { after: ["ifb"] },
    redirect: { after: ["shape", "clsact"] },
  },
  uses: ["network", "endpoint", "wireguard", "ebpf"],
  intent: trafficIntent,
  // The ifb a redirect feeds is its identity.
  replaceOn: ["ifb"],

  desired(ctx) {
    const t = fragment(ctx.intent, TRAFFIC);
    const diagnostics: Diagnostic[] = [];
    const resources: Resource[] = [];
    const leaf = ctx.facts.get("tc.fq_codel") === "yes" ? "fq_codel" : `pfifo limit ${TC.leafLimit}`;
    if (t.shapers.length && ctx.facts.get("tc.fq_codel") !== "yes")
      diagnostics.push({
        severity: "warning",
        message: `fq_codel is not in this kernel (CONFIG_NET_SCH_FQ_CODEL): HTB leaf queues are ${leaf} (tail drop, no queue management)`,
        source: t.shapers[0]!.source,
      });
    for (const s of t.shapers) {
      const spec: ShaperSpec = { rate: tcRate(s.rate), classes: classesOf(s, t), leaf };
      // A device another kind of this plan creates (a WireGuard interface) exists by the shape phase.
      const created = ctx.desired.some((r) => r.kind === "wireguard" && r.name === s.dev);
      const data = s.external && !created ? { external: true, why: s.why } : undefined;
      resources.push({
        kind: "tc",
        name: `htb/${s.dev}`,
        id: `tc:htb/${s.dev}`,
        keys: [`qdisc:root:${s.dev}`],
        spec,
        deps: [],
        owned: true,
        source: s.source,
        data,
      });
    }
    for (const i of t.ifbs) {
      resources.push({
        kind: "tc",
        name: `ifb/${i.dev}`,
        id: `tc:ifb/${i.dev}`,
        keys: [`link:${i.ifb}`],
        spec: { ifb: i.ifb, state: "up", redirect: `${i.dev} ingress` },
        deps: [`tc:htb/${i.ifb}`],
        owned: true,
        source: i.source,
      });
    }
    // A clsact for every device that needs its hooks: an ifb redirect (bolt's own devices) and a
    // tc-attached eBPF program (read: one that is there already is used as it is).
    const needs = new Map<string, Resource["source"]>();
    for (const i of t.ifbs) needs.set(i.dev, i.source);
    for (const p of fragment(ctx.intent, EBPF).programs) if (p.attach !== "xdp" && !needs.has(p.interface)) needs.set(p.interface, p.source);
    for (const [dev, source] of needs) {
      resources.push({ kind: "tc", name: `clsact/${dev}`, id: `tc:clsact/${dev}`, keys: [`qdisc:clsact:${dev}`], spec: {}, deps: [], owned: true, source });
    }
    return { resources, diagnostics };
  },

  // A device bolt does not create must exist: `tc` would fail mid-apply otherwise.
  async conflicts(desired, io) {
    const external = desired.filter((r) => r.data?.external);
    if (!external.length) return [];
    const names = new Set((await io.ipJson<IpLink[]>(["-d", "link", "show"])).map((l) => l.ifname));
    return external
      .filter((r) => !names.has(r.name.slice("htb/".length)))
      .map((r) => ({
        severity: "error" as const,
        message: `${String(r.data!.why)}: device ${r.name.slice("htb/".length)} does not exist in ${nsName(io.target)}`,
        source: r.source,
      }));
  },

  async read(io, ctx) {
    const t = fragment(ctx.intent, TRAFFIC);
    const tcPrograms = fragment(ctx.intent, EBPF).programs.some((p) => p.attach !== "xdp");
    const wanted = t.shapers.length > 0 || t.ifbs.length > 0 || tcPrograms;
    // The kernel's build config says which leaf qdiscs exist, without a probing write.
    const fqCodel = t.shapers.length ? io.exec(["zgrep", "-q", "-E", "^CONFIG_NET_SCH_FQ_CODEL=(y|m)$", "/proc/config.gz"], null) : undefined;
    const qdiscRead = () => io.exec(["tc", "-j", "qdisc", "show"]);
    // Started with the link read when the config wants trees; otherwise only if a link shows one.
    const early = wanted ? qdiscRead() : undefined;
    const links = await io.ipJson<IpLink[]>(["-d", "link", "show"]);
    const ifbs = links.filter((l) => l.linkinfo?.info_kind === "ifb" && decodeAlias(l.ifalias)?.ifb);
    // Nothing shaped here and nothing wanted: no tc process (every plan pays for this read otherwise).
    const anyHtb = links.some((l) => (l as IpLink & { qdisc?: string }).qdisc === "htb");
    if (!wanted && !ifbs.length && !anyHtb) return { resources: [], foreign: new Map() };
    const facts: Record<string, string> = {};
    if (fqCodel) facts["tc.fq_codel"] = (await fqCodel).code === 0 ? "yes" : "no";
    const q = await (early ?? qdiscRead());
    const qdiscs = (q.stdout.trim() ? JSON.parse(q.stdout) : []) as TcQdisc[];
    const boltLinks = new Set(links.filter((l) => decodeAlias(l.ifalias)).map((l) => l.ifname));
    const foreign = new Map<string, string>();
    const shaped: string[] = [];
    const clsact = new Set<string>();
    for (const x of qdiscs) {
      if (!x.dev) continue;
      if (x.root && x.handle === `${TC.major}:`) shaped.push(x.dev);
      else if (x.root && !isDefaultRoot(x)) foreign.set(`qdisc:root:${x.dev}`, `${x.kind} qdisc ${x.handle} (not bolt's)`);
      if (x.kind === "clsact") clsact.add(x.dev);
      if (x.kind === "ingress") foreign.set(`qdisc:clsact:${x.dev}`, `ingress qdisc ${x.handle} (not bolt's; clsact would replace it)`);
    }
    // One process for every device: per shaped device its root class (a marker line) and then all
    // its classes (HTB classes print no JSON in iproute2 6.1), then the clsact devices' ingress
    // filters (JSON). `qdisc show dev D` is not asked per device: the kernel dumps every qdisc of
    // the namespace for each, so the global dump above serves all of them.
    const lines = [
      ...shaped.flatMap((d) => [`class show dev ${d} classid ${cid(TC.root)}`, `class show dev ${d}`]),
      ...[...clsact].map((d) => `filter show dev ${d} ingress`),
    ];
    const batch = async (ls: string[]) =>
      splitBatchAnswer("[]\n" + (await io.runner.run(inNetns(io.target, ["tc", "-s", "-j", "-batch", "-"]), ls.join("\n") + "\n")).stdout);
    const answers = lines.length ? await batch(lines) : [];
    let perDev = splitClassDumps(answers[0]?.text ?? "", shaped.length);
    // A tree without its root class (changed by hand) has no marker: read those devices one by one.
    if (!perDev) perDev = await Promise.all(shaped.map(async (d) => parseHtbClasses((await batch([`class show dev ${d}`]))[0]?.text ?? "")));
    const filterAnswers = answers.slice(1);
    const resources: Resource[] = [];
    shaped.forEach((dev, k) => {
      const classes = perDev![k]!.sort((x, y) => x.minor - y.minor);
      const leaves = qdiscs.filter((x) => x.dev === dev && x.parent?.startsWith(`${TC.major}:`));
      const root = classes.find((c) => c.minor === TC.root);
      const leafText = [
        ...new Set(
          classes
            .filter((c) => c.minor !== TC.root)
            .map((c) => {
              const l = leaves.find((x) => x.parent === `${TC.major}:${c.minor.toString(16)}`);
              return !l ? "(kernel default)" : l.kind === "pfifo" ? `pfifo limit ${String(l.options?.limit)}` : l.kind;
            }),
        ),
      ].join(", ");
      const spec: ShaperSpec = {
        rate: root?.rate ?? "",
        classes: classes
          .filter((c) => c.minor !== TC.root)
          .map((c) => classText(c.minor, c.prio, c.rate, c.ceil))
          .join(", "),
        leaf: leafText,
      };
      resources.push({
        kind: "tc",
        name: `htb/${dev}`,
        id: `tc:htb/${dev}`,
        keys: [`qdisc:root:${dev}`],
        spec,
        deps: [],
        owned: true,
        counters: {
          classes: classes.map((c) => `${TC.major}:${c.minor.toString(16)} ${c.bytes} bytes, ${c.drops} dropped, ${c.overlimits} overlimits`).join("; "),
        },
        data: { classes },
      });
    });
    const filters = new Map([...clsact].map((d, k) => [d, (filterAnswers[k]?.json ?? []) as TcFilter[]]));
    for (const l of ifbs) {
      const dev = decodeAlias(l.ifalias)!.ifb!;
      const to = redirectTarget(filters.get(dev) ?? []);
      resources.push({
        kind: "tc",
        name: `ifb/${dev}`,
        id: `tc:ifb/${dev}`,
        keys: [`link:${l.ifname}`],
        spec: { ifb: l.ifname, state: l.flags.includes("UP") ? "up" : "down", redirect: to === l.ifname ? `${dev} ingress` : "(none)" },
        deps: [],
        owned: true,
      });
    }
    // A clsact is bolt's on bolt's own devices only (a bridge, an endpoint's veth): on another
    // device bolt cannot tell it from one somebody else added.
    // …and on any device the config needs one on (a tc program's interface): there a clsact that
    // was already there is used as it is, and none is ever deleted (bolt cannot tell whose it is).
    const needed = new Set([
      ...t.ifbs.map((i) => i.dev),
      ...fragment(ctx.intent, EBPF)
        .programs.filter((p) => p.attach !== "xdp")
        .map((p) => p.interface),
    ]);
    for (const dev of clsact)
      if (boltLinks.has(dev) || needed.has(dev))
        resources.push({ kind: "tc", name: `clsact/${dev}`, id: `tc:clsact/${dev}`, keys: [`qdisc:clsact:${dev}`], spec: {}, deps: [], owned: true });
    return { resources, foreign, facts };
  },

  render(change, ctx) {
    const ns = ctx.target;
    const what = change.name.slice(0, change.name.indexOf("/"));
    const dev = change.name.slice(what.length + 1);
    if (what === "htb") {
      if (change.action === "create") return shapeCreate(ns, dev, change.after!);
      if (change.action === "delete")
        return [{ ...tc(ns, "qdisc", "del", "dev", dev, "root"), phase: "shape", destroy: true, undo: createLines(ns, dev, change.before!) }];
      return shapeUpdate(ns, dev, change.before!, change.after!);
    }
    if (what === "clsact") {
      if (change.action === "delete")
        return [{ ...tc(ns, "qdisc", "del", "dev", dev, "clsact"), phase: "clsact", destroy: true, undo: [tc(ns, "qdisc", "add", "dev", dev, "clsact")] }];
      return [{ ...tc(ns, "qdisc", "add", "dev", dev, "clsact"), phase: "clsact", undo: [tc(ns, "qdisc", "del", "dev", dev, "clsact")] }];
    }
    return ifbOps(ns, dev, change.action === "delete" ? undefined : change.after!, change.action === "create" ? undefined : change.before!);
  },
};

const tc = (ns: Ns, ...args: string[]): OpLine => ({ tool: "tc", ns, args });
const ip = (ns: Ns, ...args: string[]): OpLine => ({ tool: "ip", ns, args });
const cid = (minor: number) => `${TC.major}:${minor.toString(16)}`;

function classText(minor: number, prio: number, rate: string, ceil: string): string {
  return `${cid(minor)} prio ${prio} rate ${rate} ceil ${ceil}`;
}

/**
 * The classes of one tree, as `tc class show` prints them: the default class, then one per
 * traffic rule. A rule without a rate is guaranteed an equal share of what explicit rates leave;
 * the default class keeps the rest. Every class may borrow up to its ceil (the rule's
 * bandwidth_limit, else the link), in priority order.
 */
function classesOf(s: ShaperIntent, t: TrafficIntent): string {
  const rules = s.rules ? t.rules : [];
  const fixed = rules.reduce((n, r) => n + (r.rate ?? 0), 0);
  const unrated = rules.filter((r) => r.rate === undefined).length;
  const share = Math.max(1, Math.floor((s.rate - fixed) / (unrated + 1)));
  const out: { minor: number; text: string }[] = [];
  let used = 0;
  for (const r of rules) {
    const ceil = Math.min(r.ceil ?? s.rate, s.rate);
    const rate = Math.min(r.rate ?? share, ceil);
    used += rate;
    out.push({ minor: r.minor, text: classText(r.minor, PRIORITIES[r.priority], tcRate(rate), tcRate(ceil)) });
  }
  out.unshift({ minor: TC.defaultMinor, text: classText(TC.defaultMinor, PRIORITIES[t.defaultPriority], tcRate(Math.max(1, s.rate - used)), tcRate(s.rate)) });
  return out.map((c) => c.text).join(", ");
}

type ClassSpec = { minor: string; prio: string; rate: string; ceil: string };
function parseClasses(spec: Record<string, string>): ClassSpec[] {
  return (spec.classes ?? "")
    .split(", ")
    .filter(Boolean)
    .map((c) => {
      const [id, , prio, , rate, , ceil] = c.split(" ");
      return { minor: id!.split(":")[1]!, prio: prio!, rate: rate!, ceil: ceil! };
    });
}

function leafArgs(spec: Record<string, string>): string[] {
  return spec.leaf === "fq_codel" ? ["fq_codel"] : ["pfifo", "limit", String(TC.leafLimit)];
}

function classLine(ns: Ns, dev: string, verb: "add" | "replace", c: ClassSpec): OpLine {
  return tc(ns, "class", verb, "dev", dev, "parent", cid(TC.root), "classid", `${TC.major}:${c.minor}`, "htb", "rate", c.rate, "ceil", c.ceil, "prio", c.prio);
}

function createLines(ns: Ns, dev: string, r: Resource): OpLine[] {
  const classes = parseClasses(r.spec);
  return [
    tc(ns, "qdisc", "add", "dev", dev, "root", "handle", `${TC.major}:`, "htb", "default", TC.defaultMinor.toString(16)),
    tc(ns, "class", "add", "dev", dev, "parent", `${TC.major}:`, "classid", cid(TC.root), "htb", "rate", r.spec.rate!, "ceil", r.spec.rate!),
    ...classes.flatMap((c) => [classLine(ns, dev, "add", c), tc(ns, "qdisc", "add", "dev", dev, "parent", `${TC.major}:${c.minor}`, ...leafArgs(r.spec))]),
  ];
}

function shapeCreate(ns: Ns, dev: string, r: Resource): RenderedOp[] {
  const [first, ...rest] = createLines(ns, dev, r);
  // Deleting the root qdisc removes every class and leaf under it: one undo for the whole tree.
  return [{ ...first!, phase: "shape", undo: [tc(ns, "qdisc", "del", "dev", dev, "root")] }, ...rest.map((l) => ({ ...l, phase: "shape", undo: [] }))];
}

/** In place: `class replace` keeps the tree (and every other class's queue) while rates move. */
function shapeUpdate(ns: Ns, dev: string, before: Resource, after: Resource): RenderedOp[] {
  const ops: RenderedOp[] = [];
  const push = (l: OpLine, undo: OpLine[]) => ops.push({ ...l, phase: "shape", undo });
  if (before.spec.rate !== after.spec.rate) {
    const root = (rate: string) => tc(ns, "class", "change", "dev", dev, "parent", `${TC.major}:`, "classid", cid(TC.root), "htb", "rate", rate, "ceil", rate);
    push(root(after.spec.rate!), [root(before.spec.rate!)]);
  }
  const was = new Map(parseClasses(before.spec).map((c) => [c.minor, c]));
  const now = new Map(parseClasses(after.spec).map((c) => [c.minor, c]));
  const leafChanged = before.spec.leaf !== after.spec.leaf;
  for (const [minor, c] of now) {
    const old = was.get(minor);
    const leaf = (spec: Record<string, string>) => tc(ns, "qdisc", "replace", "dev", dev, "parent", `${TC.major}:${minor}`, ...leafArgs(spec));
    if (!old) {
      push(classLine(ns, dev, "add", c), [tc(ns, "class", "del", "dev", dev, "classid", `${TC.major}:${minor}`)]);
      push(leaf(after.spec), []);
      continue;
    }
    if (JSON.stringify(old) !== JSON.stringify(c)) push(classLine(ns, dev, "replace", c), [classLine(ns, dev, "replace", old)]);
    if (leafChanged) push(leaf(after.spec), [leaf(before.spec)]);
  }
  for (const [minor, c] of was)
    if (!now.has(minor))
      push(tc(ns, "class", "del", "dev", dev, "classid", `${TC.major}:${minor}`), [
        classLine(ns, dev, "add", c),
        tc(ns, "qdisc", "add", "dev", dev, "parent", `${TC.major}:${minor}`, ...leafArgs(before.spec)),
      ]);
  return ops;
}

/** The u32 filter that sends every packet arriving on DEV to the ifb's egress (mirred: this kernel has no `police`). */
function redirect(ns: Ns, verb: "add" | "del", dev: string, ifb: string): OpLine {
  const at = ["dev", dev, "ingress", "pref", String(TC.redirectPref), "protocol", "all"];
  return verb === "del"
    ? tc(ns, "filter", "del", ...at)
    : tc(ns, "filter", "add", ...at, "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb);
}

function ifbLines(ns: Ns, dev: string, ifb: string): OpLine[] {
  return [
    ip(ns, "link", "add", "name", ifb, "txqueuelen", String(TC.leafLimit), "type", "ifb"),
    ip(ns, "link", "set", "dev", ifb, "alias", encodeAlias({ ifb: dev }), "up"),
  ];
}

function ifbOps(ns: Ns, dev: string, after: Resource | undefined, before: Resource | undefined): RenderedOp[] {
  const ops: RenderedOp[] = [];
  if (!before) {
    const ifb = after!.spec.ifb!;
    const [add, up] = ifbLines(ns, dev, ifb);
    ops.push({ ...add!, phase: "ifb", undo: [ip(ns, "link", "del", "dev", ifb)] }, { ...up!, phase: "ifb", undo: [] });
    ops.push({ ...redirect(ns, "add", dev, ifb), phase: "redirect", undo: [redirect(ns, "del", dev, ifb)] });
    return ops;
  }
  const ifb = before.spec.ifb!;
  if (!after) {
    if (before.spec.redirect !== "(none)")
      ops.push({ ...redirect(ns, "del", dev, ifb), phase: "redirect", destroy: true, undo: [redirect(ns, "add", dev, ifb)] });
    ops.push({ ...ip(ns, "link", "del", "dev", ifb), phase: "ifb", destroy: true, undo: ifbLines(ns, dev, ifb) });
    return ops;
  }
  if (before.spec.state !== after.spec.state)
    ops.push({ ...ip(ns, "link", "set", "dev", ifb, "up"), phase: "ifb", undo: [ip(ns, "link", "set", "dev", ifb, "down")] });
  if (before.spec.redirect !== after.spec.redirect) ops.push({ ...redirect(ns, "add", dev, ifb), phase: "redirect", undo: [redirect(ns, "del", dev, ifb)] });
  return ops;
}
