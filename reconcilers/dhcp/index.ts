import { fragment } from "../../src/core/intent.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { OpLine, PlanContext, Reconciler, RenderedOp, Resource } from "../../src/core/resource.js";
import { nsName } from "../../src/exec/runner.js";
import type { Ns } from "../../src/exec/runner.js";
import { ENDPOINTS } from "../endpoint/intent.js";
import { DHCP, dhcpIntent } from "./intent.js";
import type { DhcpIntent } from "./intent.js";
import { isOurDnsmasq, parseListeners, readDhcp } from "./read.js";
import { RESTART_FIELDS, dhcpPaths, hostsText, renderConf, renderHosts, renderOpts, specOf, targetDir, vmMac } from "./render.js";
import type { DhcpHost, DhcpPaths } from "./render.js";

/**
 * `networks.*.dhcp = true`: one dnsmasq per network, bolt's own, bound to the bridge in the
 * target namespace, serving the addresses bolt's IPAM leased as static hosts: a tap endpoint's
 * VM by the MAC bolt derives for it (render.ts), a veth endpoint by its configured `mac`. The
 * Volant seed's dnsmasq recipe, without the host-wide service: config, hosts, pid and lease
 * files live in RUN_DIR/dnsmasq/<target>/<network>/ and the pid file plus the process's argv
 * is how bolt knows its dnsmasq. A new or removed lease, or a new router or nameserver, is a
 * SIGHUP (dnsmasq re-reads its hosts and options files; the daemon, its pid and the other
 * VMs' leases stay); the interface, range or lease time restart it.
 */
export const dhcpReconciler: Reconciler = {
  kind: "dhcp",
  // dnsmasq binds to the bridge, which must exist with its address when it starts; deletes run
  // backwards, so it stops before the bridge goes and before its files are removed.
  phases: {
    files: {},
    daemon: { after: ["files", "network.link", "endpoint.port"] },
    reload: { after: ["daemon"] },
  },
  uses: ["network", "endpoint", "resolver"],
  intent: dhcpIntent,
  replaceOn: [],

  desired(ctx) {
    const diagnostics: Diagnostic[] = [];
    const resources = fragment(ctx.intent, DHCP).map((d) => {
      const hosts = hostsOf(d, ctx, diagnostics);
      const p = dhcpPaths(ctx.target, d.network);
      const texts = { conf: renderConf(d, p), opts: renderOpts(d), hosts: renderHosts(hosts) };
      const resource: Resource = {
        kind: "dhcp",
        name: d.network,
        id: `dhcp:${d.network}`,
        keys: [`dnsmasq:${p.dir}`],
        spec: { ...specOf(texts.conf, texts.opts, texts.hosts), daemon: "running" },
        display: { hosts: hostsText(hosts) },
        data: { files: texts },
        deps: [`network:${d.network}`],
        owned: true,
        source: d.source,
        fieldSources: { ...d.fieldSources, hosts: d.source, config: d.source, daemon: d.source },
      };
      return resource;
    });
    return { resources, diagnostics };
  },

  // read skips the run dir's dnsmasq directory when it does not exist
  planFiles: (t) => [targetDir(t)],
  read(io, ctx) {
    return readDhcp(
      io,
      fragment(ctx.intent, DHCP).map((d) => d.network),
    ).then((resources) => ({ resources, foreign: new Map() }));
  },

  /**
   * Two DHCP servers on one bridge answer the same DISCOVER with different offers, and a VM
   * takes whichever comes first. Any UDP 67 listener in the target bound to a served bridge, or
   * to no device at all (it hears every interface), that is not bolt's own dnsmasq is a conflict.
   */
  async conflicts(desired, io) {
    if (!desired.length) return [];
    const r = await io.exec(["ss", "-H", "-l", "-u", "-n", "-p", "sport", "=", ":67"]);
    if (r.code !== 0 || !r.stdout.trim()) return [];
    const out: Diagnostic[] = [];
    const listeners = parseListeners(r.stdout);
    for (const d of desired) {
      const p = dhcpPaths(io.target, d.name);
      const theirs: string[] = [];
      for (const l of listeners) {
        if (l.device !== undefined && l.device !== d.spec.interface) continue;
        for (const proc of l.procs) if (!(await isOurDnsmasq(io, proc.pid, p.conf))) theirs.push(`${proc.name} (pid ${proc.pid})`);
      }
      if (theirs.length)
        out.push({
          severity: "error",
          message: `network "${d.name}": the DHCP port on bridge ${d.spec.interface} in ${nsName(io.target)} is held by ${[...new Set(theirs)].join(", ")}, which bolt did not start: two DHCP servers on one bridge hand VMs different answers`,
          source: d.source,
          hint: "stop that server (bolt never touches it), or drop dhcp = true",
        });
    }
    return out;
  },

  async prepare(changes, io) {
    if (!changes.some((c) => c.after)) return { diagnostics: [] };
    const r = await io.exec(["dnsmasq", "--version"], null);
    if (r.code === 0) return { diagnostics: [] };
    const first = changes.find((c) => c.after)!;
    return {
      diagnostics: [
        {
          severity: "error",
          message: "`dnsmasq` is not installed on the target host: networks.*.dhcp needs it",
          source: first.after!.source,
          hint: "apt install dnsmasq-base (the binary, without the host-wide service)",
        },
      ],
    };
  },

  render(change, ctx) {
    const name = change.name;
    const p = dhcpPaths(ctx.target, name);
    const before = change.before;
    const after = change.after;
    const old = before?.data?.files as Files | undefined;
    if (change.action === "delete") {
      const ops: RenderedOp[] = [];
      if (before!.spec.daemon === "running") {
        ops.push({ ...stop(p), phase: "daemon", undo: [start(ctx.target, p)] });
        ops.push({ ...local("tail", `--pid=${before!.data!.pid}`, "-s", "0.1", "-f", "/dev/null"), phase: "daemon", undo: [] });
      }
      const last = removesTargetDir(name, ctx);
      ops.push({ ...local("rm", "-rf", "--", last ? targetDir(ctx.target) : p.dir), phase: "files", undo: old ? writeFiles(p, old) : [] });
      return ops;
    }
    const files = after!.data!.files as Files;
    if (change.action === "create" || before!.spec.daemon !== "running") {
      // Nothing of bolt's runs for this network (new, or its dnsmasq died): write the files, start it.
      return [
        ...writeFiles(p, files).map((l, i): RenderedOp => ({ ...l, phase: "files", undo: i === 0 && !old ? [local("rm", "-rf", "--", p.dir)] : [] })),
        { ...start(ctx.target, p), phase: "daemon", undo: [stop(p), ...(old ? writeFiles(p, old) : [])] },
      ];
    }
    if (change.changed.some((f) => RESTART_FIELDS.includes(f))) {
      // dnsmasq reads its config only when it starts: stop, swap, start. Undone backwards, the
      // old config is back before the old daemon starts again.
      return [
        { ...stop(p), phase: "daemon", undo: [start(ctx.target, p)] },
        { ...local("tail", `--pid=${before!.data!.pid}`, "-s", "0.1", "-f", "/dev/null"), phase: "daemon", undo: [] },
        ...writeFiles(p, files).map((l): RenderedOp => ({ ...l, phase: "daemon", undo: [] })),
        { ...start(ctx.target, p), phase: "daemon", undo: [stop(p), ...writeFiles(p, old!)] },
      ];
    }
    // Hosts and options only: new files and a SIGHUP; the running daemon and its leases stay.
    return [
      { ...tee(p.opts, files.opts), phase: "reload", undo: [tee(p.opts, old!.opts)] },
      { ...tee(p.hosts, files.hosts), phase: "reload", undo: [tee(p.hosts, old!.hosts)] },
      { ...hup(p), phase: "reload", undo: [hup(p)] },
    ];
  },
};

interface Files {
  conf: string;
  opts: string;
  hosts: string;
}

/**
 * The leases of the network's endpoints, by address: a tap's VM at the MAC bolt derives for it,
 * a veth endpoint at its configured `mac` (without one the kernel picked its MAC and it needs no
 * DHCP: bolt configured its address inside).
 */
function hostsOf(d: DhcpIntent, ctx: PlanContext, diagnostics: Diagnostic[]): DhcpHost[] {
  const intents = new Map(fragment(ctx.intent, ENDPOINTS).map((e) => [e.name, e]));
  const hosts: (DhcpHost & { n: number })[] = [];
  for (const r of ctx.desired) {
    if (r.kind !== "endpoint" || r.spec.network !== d.network || !r.spec.ip) continue;
    const ip = r.spec.ip.split("/")[0]!;
    const e = intents.get(r.name);
    let mac: string | undefined;
    if (r.spec.type === "tap") {
      mac = vmMac(ctx.target, r.name);
      if (e?.mac)
        diagnostics.push({
          severity: "warning",
          message: `endpoint "${r.name}": mac ${e.mac} is its tap's own, host-side address; bolt's DHCP serves its VM at ${mac} (a bridge delivers frames for a port's own address to the host, so the VM's MAC must differ)`,
          source: e.fieldSources.mac ?? e.source,
        });
    } else if (r.spec.mac) mac = r.spec.mac;
    if (mac) hosts.push({ endpoint: r.name, mac, ip, n: ipNum(ip) });
  }
  hosts.sort((a, b) => a.n - b.n);
  const seen = new Map<string, string>();
  for (const h of hosts) {
    const other = seen.get(h.mac);
    if (other)
      diagnostics.push({
        severity: "error",
        message: `endpoint "${h.endpoint}": MAC ${h.mac} is also endpoint "${other}"'s: dnsmasq would give both one lease`,
        source: intents.get(h.endpoint)?.source ?? d.source,
      });
    seen.set(h.mac, h.endpoint);
  }
  return hosts.map(({ endpoint, mac, ip }) => ({ endpoint, mac, ip }));
}

const ipNum = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);

/** The target's dnsmasq directory goes with its last network: no dhcp network left, and this is the first (by name) of the live ones. */
function removesTargetDir(name: string, ctx: PlanContext): boolean {
  if (fragment(ctx.intent, DHCP).length) return false;
  const live = [...ctx.live.values()].filter((r) => r.kind === "dhcp" && r.owned).map((r) => r.name);
  return live.sort()[0] === name;
}

/** Files live in the host's file system; only dnsmasq runs in the target namespace. */
const local = (...args: string[]): OpLine => ({ tool: "exec", ns: null, args });

const tee = (file: string, text: string): OpLine => ({ ...local("tee", file), stdin: text });

/** The network's directory and the three files dnsmasq reads (MACs and addresses: nothing secret, inside bolt's 0700 run dir). */
function writeFiles(p: DhcpPaths, f: Files): OpLine[] {
  return [local("install", "-d", "-m", "0755", p.dir), tee(p.conf, f.conf), tee(p.opts, f.opts), tee(p.hosts, f.hosts)];
}

/** dnsmasq forks into the background once its sockets are bound, its pid file is written and its files are read (a startup error is its exit code). */
const start = (ns: Ns, p: DhcpPaths): OpLine => ({ tool: "exec", ns, args: ["dnsmasq", `--conf-file=${p.conf}`, `--pid-file=${p.pid}`] });

/** The pid in bolt's pid file, and only if that process is a dnsmasq (pkill matches the name). */
const stop = (p: DhcpPaths): OpLine => local("pkill", "--pidfile", p.pid, "--exact", "dnsmasq");

const hup = (p: DhcpPaths): OpLine => local("pkill", "--signal", "HUP", "--pidfile", p.pid, "--exact", "dnsmasq");
