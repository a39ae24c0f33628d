import { formatIp4, parseIp4 } from "../../src/core/ipv4.js";
import { host128, nodeAddress6 } from "./mesh6.js";
import { decodeAlias, encodeAlias } from "../../src/core/ownership.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import type { OpLine, PlanContext, Reconciler, RenderedOp, Resource } from "../../src/core/resource.js";
import type { IpAddr, IpLink, IpRoute, LiveReader } from "../../src/core/live-reader.js";
import type { Ns } from "../../src/exec/runner.js";
import { parseWgDump } from "./dump.js";
import type { WgDump } from "./dump.js";
import { WIREGUARD, wireguardIntentHooks } from "./intent.js";
import type { WgIntent } from "./intent.js";

/**
 * `[wireguard.NAME]` and the mesh node's interface. Where the kernel has WireGuard (the module
 * is loaded, built in or loadable) a device is `ip link add … type wireguard`; elsewhere (this
 * machine class) `wireguard-go IF` creates a tun device and serves its control socket, and
 * deleting the link stops the process. A bolt interface whose process died has lost its tun
 * device, so it shows as missing (or "dead") and is created again. In a named namespace both
 * run with the target's private /var/run/wireguard (src/exec/wg-runtime.ts), so every
 * namespace can have its own `gw0`.
 */
export const WG_MTU = 1420;

export const wireguardReconciler: Reconciler = {
  kind: "wireguard",
  // The target's control-socket directory; wireguard-go creates the device; addresses and the
  // MTU go on it; then its keys and port. (Deletes run backwards: the runtime goes last.)
  phases: { rt: {}, dev: { after: ["rt"] }, addr: { after: ["dev"] }, conf: { after: ["addr"] } },
  intent: wireguardIntentHooks,
  replaceOn: ["type"],
  // No listen_port in the config (documented optional): the port wireguard-go picked is fine.
  kernelChosen: ["listen_port"],
  readScope: [{ ip: ["-d", "link", "show"] }, { ip: ["addr", "show"] }],

  desired(ctx) {
    const resources: Resource[] = [];
    const diagnostics: Diagnostic[] = [];
    const kernel = ctx.facts.get("wireguard.kernel") === "yes";
    for (const w of fragment(ctx.intent, WIREGUARD).interfaces) {
      // Compared sorted, like the live read lists them; added in the config's order (data.addresses):
      // the first is the source address the kernel picks for the allowed-IP routes, as with wg-quick.
      const v4 = w.address
        ? [w.address, ...(w.moreAddresses ?? [])].map((a) => `${formatIp4(a.addr)}/${a.prefix}`)
        : w.mesh
          ? [meshAddress(ctx, w.ifname)]
          : [];
      // A mesh node's IPv6 address (unless given) follows its effective IPv4 one (mesh6.ts).
      const v6 = w.addresses6 ?? (w.mesh ? meshAddress6(ctx, v4[0]) : []);
      const addresses = [...v4, ...v6];
      const address = [...addresses].sort().join(", ");
      // A working device keeps its implementation; a new (or dead) one gets what this host has.
      const live = ctx.live.get(`wireguard:${w.ifname}`);
      const liveType = live?.spec.type;
      const held = keyHeld(w, live, diagnostics);
      const spec: Record<string, string> = {
        type: liveType === "kernel" || liveType === "userspace" ? liveType : kernel ? "kernel" : "userspace",
        address,
        listen_port: w.listenPort ? String(w.listenPort) : "",
        public_key: held ?? w.publicKey,
        fwmark: w.fwmark ? `0x${w.fwmark.toString(16)}` : "",
        mtu: String(
          w.mtu ?? ctx.facts.get(`wireguard.mtu:${w.ifname}`) ?? (liveType === "kernel" || liveType === "userspace" ? live?.spec.mtu : undefined) ?? WG_MTU,
        ),
        state: "up",
      };
      resources.push({
        kind: "wireguard",
        name: w.ifname,
        id: `wireguard:${w.ifname}`,
        keys: [`link:${w.ifname}`],
        spec,
        data: { keyFile: w.privateKeyFile, mesh: w.mesh, addresses },
        deps: [],
        owned: true,
        source: w.source,
      });
    }
    return { resources, diagnostics };
  },

  async read(io, ctx) {
    const links = await io.ipJson<IpLink[]>(["-d", "link", "show"]);
    const mine = links.filter((l) => decodeAlias(l.ifalias)?.wg);
    const wanted = fragment(ctx.intent, WIREGUARD).interfaces;
    const facts: Record<string, string> = {};
    const resources = mine.length ? await readInterfaces(io, mine) : [];
    // Which implementation and, without an `mtu`, which MTU a new device gets matter only where
    // one is made: a working device keeps its own (desired()), as wg-quick sets the MTU at `up`
    // only. The probe is two processes, and the MTU a `route get` of every peer's endpoint, on
    // every pass of a mesh host (again after each route change).
    const working = new Set(resources.filter((r) => r.spec.type !== "dead").map((r) => r.name));
    const made = wanted.filter((w) => !working.has(w.ifname));
    for (const w of made.filter((x) => x.mtu === undefined)) facts[`wireguard.mtu:${w.ifname}`] = String(await wgQuickMtu(io, w, links));
    if (made.length) facts["wireguard.kernel"] = (await kernelHasWireguard(io)) ? "yes" : "no";
    return { resources, foreign: new Map(), facts };
  },

  // In the host namespace wireguard-go's control socket is /var/run/wireguard/IF.sock, where a
  // wireguard-go started in another namespace by something else (wg-quick under `ip netns exec`)
  // also puts its socket: a live one for a name this namespace does not have would make
  // wireguard-go refuse to start ("unix socket in use") in the middle of an apply.
  async conflicts(desired, io) {
    if (!desired.length || io.target !== null) return [];
    const here = new Set((await io.ipJson<IpLink[]>(["link", "show"])).map((l) => l.ifname));
    const out: Diagnostic[] = [];
    for (const d of desired.filter((x) => !here.has(x.name))) {
      if ((await io.exec(["test", "-S", `/var/run/wireguard/${d.name}.sock`], null)).code !== 0) continue;
      if ((await io.exec(["wg", "show", d.name, "listen-port"], null, { timeoutMs: 2000 })).code !== 0) continue;
      out.push({
        severity: "error",
        message: `WireGuard interface name "${d.name}" is already served by a wireguard-go that was started in another network namespace without its own /var/run/wireguard (its control socket /var/run/wireguard/${d.name}.sock is the host's): choose another interface name`,
        source: d.source,
      });
    }
    return out;
  },

  render(change, ctx) {
    const ns = ctx.target;
    if (change.action === "create") return createOps(change.after!, ns);
    if (change.action === "delete") {
      const del: RenderedOp = { ...ipLine(ns, "link", "del", "dev", change.name), phase: "dev", undo: createLines(change.before!, ns) };
      // The last interface of a namespace takes its control-socket directory with it.
      const last = ns !== null && !fragment(ctx.intent, WIREGUARD).interfaces.length;
      return last ? [del, { ...runtime(ns, "release"), phase: "rt", undo: [runtime(ns, "ensure")] }] : [del];
    }
    return updateOps(change.before!, change.after!, change.changed, ns);
  },

  commit(change, store, target) {
    if (!change.after?.data?.mesh) return;
    if (change.action === "delete") store.releaseLease(target, `mesh:${change.name}`);
    else {
      // The lease is the IPv4 mesh address (the IPv6 one follows from it).
      const v4 = change.after.spec.address!.split(", ").find((x) => !x.includes(":"));
      if (v4) store.setLease(target, "mesh", `mesh:${change.name}`, v4.split("/")[0]!);
    }
  },
};

/**
 * A key rotation the mesh store has not approved (intent.ts keyHold): a live device with the
 * key this host's identity pins keeps its private key — its desired public key is the live one,
 * so nothing is written and a re-plan is empty; it is not read from anywhere but the device.
 * Any other device (none yet, dead, another key) gets the key file's as usual. Both say so.
 */
function keyHeld(w: WgIntent, live: Resource | undefined, diagnostics: Diagnostic[]): string | undefined {
  const h = w.keyHold;
  if (!h) return undefined;
  const approve = `\`bolt mesh approve ${h.node}\` approves the key its request shows`;
  if (live?.owned && live.spec.type !== "dead" && live.spec.public_key === h.publicKey) {
    diagnostics.push({
      severity: "warning",
      message: `${w.ifname}: ${w.privateKeyFile} holds a new key (public key ${w.publicKey}), but node "${h.node}"'s identity in the mesh store still pins ${h.publicKey}: the interface keeps its current private key, so its peers still reach it; ${approve}, and the next pass applies the new key`,
      source: h.source,
    });
    return h.publicKey;
  }
  diagnostics.push({
    severity: "warning",
    message: `${w.ifname}: the interface gets the key of ${w.privateKeyFile} (public key ${w.publicKey}), but node "${h.node}"'s identity in the mesh store pins ${h.publicKey}: its peers reach it only once ${approve}`,
    source: h.source,
  });
  return undefined;
}

/** Mesh address not given in the file: the lease, else what the interface has, else the key-derived one. */
function meshAddress(ctx: PlanContext, ifname: string): string {
  const lease = ctx.leases.get(`mesh:${ifname}`);
  if (lease) return `${lease}/32`;
  const live = ctx.live.get(`wireguard:${ifname}`);
  // The live list has both families ("100.64.0.5/32, fd7a:…/128"): its IPv4 address.
  const live4 = live?.owned ? live.spec.address?.split(", ").find((a) => !a.includes(":")) : undefined;
  if (live4) return live4;
  return `${formatIp4(fragment(ctx.intent, WIREGUARD).mesh!.self.address)}/32`;
}

/** The mesh node's IPv6 /128 derived from its IPv4 address; none when the mesh has IPv6 off. */
function meshAddress6(ctx: PlanContext, v4: string | undefined): string[] {
  const mesh = fragment(ctx.intent, WIREGUARD).mesh;
  const a = v4 === undefined ? undefined : parseIp4(v4.split("/")[0]!);
  const six = mesh && a !== undefined ? nodeAddress6(mesh, { address: a }) : undefined;
  return six === undefined ? [] : [host128(six)];
}

export async function wgDump(io: LiveReader, ifname: string): Promise<WgDump | undefined> {
  // `wg` waits on the control socket without a timeout: a hung (stopped, deadlocked)
  // wireguard-go would hang every plan. Bounded, such a device reads as not running.
  const r = await io.exec(["wg", "show", ifname, "dump"], undefined, { timeoutMs: 5000 });
  return r.code === 0 ? parseWgDump(r.stdout) : undefined;
}

/** The address of an `IP:PORT` or `[IPv6]:PORT` endpoint; undefined for a host name. */
export function endpointAddress(endpoint: string): string | undefined {
  const v6 = /^\[([0-9a-fA-F:.]+)\]:\d+$/.exec(endpoint);
  if (v6) return v6[1];
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(endpoint);
  return v4?.[1];
}

/**
 * The MTU wg-quick gives an interface without `MTU =`: the largest path MTU towards its peers'
 * endpoints (the route's `mtu` metric, else its device's MTU), or the default route's device
 * MTU when no peer has an endpoint, else 1500; minus 80 (the IPv6 + UDP + WireGuard overhead).
 * A 1400 underlay gets 1320, so full-size packets are not fragmented. The endpoint's route is
 * asked with the interface's fwmark, as its own packets are routed (a full tunnel would send
 * the question into the tunnel itself); an answer through the interface itself is ignored.
 */
async function wgQuickMtu(io: LiveReader, w: WgIntent, links: IpLink[]): Promise<number> {
  const mtuOf = (r?: RouteAnswer) => r?.metrics?.find((x) => x.mtu)?.mtu ?? links.find((l) => l.ifname === r?.dev)?.mtu ?? 0;
  const mark = w.fwmark ? ["mark", `0x${w.fwmark.toString(16)}`] : [];
  const addrs = [...new Set(w.peers.map((p) => (p.endpoint ? endpointAddress(p.endpoint) : undefined)).filter((a): a is string => !!a))];
  let best = 0;
  if (addrs.length) {
    // One process for every endpoint; an unreachable one just has no answer (wg-quick skips it).
    const answers = (await io.ipJsonBatchLoose(addrs.map((a) => ["route", "get", a, ...mark].join(" ")))) as RouteAnswer[][];
    for (const r of answers.flat()) if (r.dev !== w.ifname) best = Math.max(best, mtuOf(r));
  }
  // No endpoint route told anything: the default route's device, as wg-quick falls back to.
  if (!best) best = mtuOf((await io.ipJson<RouteAnswer[]>(["route", "show", "default"]).catch(() => [] as RouteAnswer[])).find((r) => r.dev !== w.ifname));
  return (best || 1500) - 80;
}

type RouteAnswer = IpRoute & { metrics?: { mtu?: number }[] };

/** bolt's WireGuard devices as the kernel has them (one address read for all). */
async function readInterfaces(io: LiveReader, mine: IpLink[]): Promise<Resource[]> {
  const addrs = await io.ipJson<IpAddr[]>(["addr", "show"]);
  return Promise.all(mine.map((l) => readInterface(io, l, addrs)));
}

/**
 * Whether devices can be `ip link add … type wireguard`: the module is loaded or built in
 * (/sys/module/wireguard), or modprobe could load it. Read-only: no probe device is made.
 */
async function kernelHasWireguard(io: LiveReader): Promise<boolean> {
  if ((await io.exec(["test", "-d", "/sys/module/wireguard"], null)).code === 0) return true;
  return (await io.exec(["modprobe", "-n", "-q", "wireguard"], null)).code === 0;
}

async function readInterface(io: LiveReader, l: IpLink, addrs: IpAddr[]): Promise<Resource> {
  const tag = decodeAlias(l.ifalias)!;
  const dump = await wgDump(io, l.ifname);
  // IPv4 and global IPv6 addresses (a link-local fe80:: is the kernel's, never bolt's).
  const v4 = (addrs.find((a) => a.ifname === l.ifname)?.addr_info ?? [])
    .filter((a) => a.family === "inet" || (a.family === "inet6" && a.scope !== "link"))
    .map((a) => `${a.local}/${a.prefixlen}`)
    .sort();
  const spec: Record<string, string> = {
    // A tun device nobody serves (process gone) cannot be configured: replace it.
    type: dump ? (l.linkinfo?.info_kind === "wireguard" ? "kernel" : "userspace") : "dead",
    address: v4.join(", "),
    listen_port: dump?.listenPort ? String(dump.listenPort) : "",
    public_key: dump?.publicKey && dump.publicKey !== "(none)" ? dump.publicKey : "",
    fwmark: dump?.fwmark ? `0x${dump.fwmark.toString(16)}` : "",
    mtu: String(l.mtu),
    state: l.flags.includes("UP") ? "up" : "down",
  };
  return {
    kind: "wireguard",
    name: l.ifname,
    id: `wireguard:${l.ifname}`,
    keys: [`link:${l.ifname}`],
    spec,
    data: { keyFile: tag.key, mesh: tag.mesh === "1" },
    deps: [],
    owned: true,
  };
}

const ipLine = (ns: Ns, ...args: string[]): OpLine => ({ tool: "ip", ns, args });
const exec = (ns: Ns, ...args: string[]): OpLine => ({ tool: "exec", ns, args });
const runtime = (ns: Ns, what: "ensure" | "release"): OpLine => ({ tool: "wgrt", ns, args: [what] });

function wgSetArgs(r: Resource, fields: string[]): string[] {
  const s = r.spec;
  const out: string[] = [];
  if (fields.includes("public_key") && r.data?.keyFile) out.push("private-key", String(r.data.keyFile));
  if (fields.includes("listen_port") && s.listen_port) out.push("listen-port", s.listen_port);
  if (fields.includes("fwmark")) out.push("fwmark", s.fwmark || "off");
  return out;
}

/** Lines that build the interface from nothing (also the undo of its deletion). */
function createLines(r: Resource, ns: Ns): OpLine[] {
  const dev = r.name;
  const conf = wgSetArgs(r, ["public_key", "listen_port", "fwmark"]);
  return [
    ...(ns !== null ? [runtime(ns, "ensure")] : []),
    r.spec.type === "kernel" ? ipLine(ns, "link", "add", "dev", dev, "type", "wireguard") : exec(ns, "wireguard-go", dev),
    ipLine(ns, "link", "set", "dev", dev, "alias", encodeAlias({ wg: dev, key: keyPathForAlias(r), mesh: r.data?.mesh ? "1" : undefined })),
    ...((r.data?.addresses as string[] | undefined) ?? (r.spec.address ? r.spec.address.split(", ") : [])).map((a) =>
      ipLine(ns, "address", "add", a, "dev", dev),
    ),
    ipLine(ns, "link", "set", "dev", dev, "mtu", r.spec.mtu!, "up"),
    ...(conf.length ? [exec(ns, "wg", "set", dev, ...conf)] : []),
  ];
}

/** The key file path is recorded on the link so a deletion can be undone after a restart. */
function keyPathForAlias(r: Resource): string | undefined {
  const p = r.data?.keyFile ? String(r.data.keyFile) : undefined;
  return p && !/[,=\s"'\\]/.test(p) ? p : undefined;
}

function createOps(r: Resource, ns: Ns): RenderedOp[] {
  const lines = createLines(r, ns);
  // Left in place on undo: other devices may use it, and it holds nothing of this one's.
  const rt: RenderedOp[] = lines[0]!.tool === "wgrt" ? [{ ...lines.shift()!, phase: "rt", undo: [] }] : [];
  const [start, alias, ...rest] = lines;
  const phaseOf = (l: OpLine) => (l.tool === "ip" ? "addr" : "conf");
  return [
    ...rt,
    // Deleting the link ends wireguard-go and everything configured on the device.
    { ...start!, phase: "dev", undo: [ipLine(ns, "link", "del", "dev", r.name)] },
    { ...alias!, phase: "addr", undo: [] },
    ...rest.map((l) => ({ ...l, phase: phaseOf(l), undo: [] })),
  ];
}

function updateOps(before: Resource, after: Resource, changed: string[], ns: Ns): RenderedOp[] {
  const dev = after.name;
  const ops: RenderedOp[] = [];
  if (changed.includes("address")) {
    const want = new Set(after.spec.address ? after.spec.address.split(", ") : []);
    const have = new Set(before.spec.address ? before.spec.address.split(", ") : []);
    for (const a of want)
      if (!have.has(a)) ops.push({ ...ipLine(ns, "address", "add", a, "dev", dev), phase: "addr", undo: [ipLine(ns, "address", "del", a, "dev", dev)] });
    for (const a of have)
      if (!want.has(a)) ops.push({ ...ipLine(ns, "address", "del", a, "dev", dev), phase: "addr", undo: [ipLine(ns, "address", "add", a, "dev", dev)] });
  }
  if (changed.includes("mtu") || changed.includes("state"))
    ops.push({
      ...ipLine(ns, "link", "set", "dev", dev, "mtu", after.spec.mtu!, "up"),
      phase: "addr",
      undo: [ipLine(ns, "link", "set", "dev", dev, "mtu", before.spec.mtu!)],
    });
  const conf = wgSetArgs(after, changed);
  // The old private key is not kept anywhere (by design), so a key change cannot be undone.
  const undoConf = wgSetArgs(
    before,
    changed.filter((f) => f !== "public_key"),
  );
  if (conf.length) ops.push({ ...exec(ns, "wg", "set", dev, ...conf), phase: "conf", undo: undoConf.length ? [exec(ns, "wg", "set", dev, ...undoConf)] : [] });
  return ops;
}
