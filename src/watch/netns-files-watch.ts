import { existsSync, readdirSync, watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { join } from "node:path";

const NETNS_RUN = "/run/netns";
const NETNS_ETC = "/etc/netns";
const ETC = "/etc";

/**
 * inotify on what the daemon's plans read from the file system rather than from rtnetlink: the
 * namespace list (`ip netns list` is the entries of /run/netns), the per-namespace files `ip netns
 * exec` binds over /etc (/etc/netns/NAME/hosts, resolv.conf) and /etc/hosts. One watch per
 * directory (inotify is not recursive; /etc/netns gains a directory per endpoint, watched as it
 * appears), none on files (a rename over a file would end its watch). Any event says "re-read".
 * While every watch is in place, the reads of these paths are answered from the daemon's cache
 * (covers()); a watch that fails (a directory removed, the inotify limit) stops that until the
 * next start() succeeds.
 */
export class NetnsFilesWatch {
  private readonly watchers = new Map<string, FSWatcher>();
  private ok = false;
  private stopped = false;

  constructor(private readonly onEvent: (path: string) => void) {}

  start(): void {
    this.stopped = false;
    this.ok = true;
    // /etc for /etc/hosts, and for /etc/netns appearing; /run/netns and /etc/netns by rescan()
    this.add(ETC, ["hosts", "netns"]);
    this.rescan();
  }

  stop(): void {
    this.stopped = true;
    this.ok = false;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** Whether a command only reads paths these watches cover (it must already be known as a read). */
  covers(argv: string[]): boolean {
    if (!this.ok) return false;
    if (argv.join(" ") === "ip -j netns list") return this.watchers.has(NETNS_RUN);
    return readsNetnsFiles(argv);
  }

  /** Watches dir (only the entries `only` names, when given); a watch that says a directory appeared or went rescans. */
  private add(dir: string, only?: string[]): void {
    if (this.watchers.has(dir) || this.stopped) return;
    if (!existsSync(dir)) {
      // /run/netns appears with the first namespace: watch /run for it (/etc, watched from the start, says when /etc/netns does).
      if (dir === NETNS_RUN) this.add("/run", ["netns"]);
      return;
    }
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: false }, (_event, name) => {
        if (only && !only.includes(String(name))) return;
        if (dir === NETNS_ETC || name === "netns") this.rescan();
        this.onEvent(name ? join(dir, name.toString()) : dir);
      });
    } catch {
      this.ok = false;
      return;
    }
    w.on("error", () => {
      // The directory went away (a namespace's /etc/netns/NAME removed): forget its watch.
      w.close();
      this.watchers.delete(dir);
      if (dir === NETNS_RUN || dir === NETNS_ETC || dir === ETC) this.ok = false;
      this.onEvent(dir);
    });
    this.watchers.set(dir, w);
  }

  /** Watches /etc/netns's subdirectories as they come, drops those gone; picks up /run/netns and /etc/netns once they exist. */
  private rescan(): void {
    if (this.stopped) return;
    this.add(NETNS_RUN);
    if (!existsSync(NETNS_ETC)) return;
    this.add(NETNS_ETC);
    let names: string[] = [];
    try {
      names = readdirSync(NETNS_ETC);
    } catch {
      return;
    }
    const want = new Set(names.map((n) => join(NETNS_ETC, n)));
    for (const d of want) this.add(d);
    for (const [d, w] of this.watchers)
      if (d.startsWith(`${NETNS_ETC}/`) && !want.has(d)) {
        w.close();
        this.watchers.delete(d);
      }
  }
}

/** The namespace an event path is about (/run/netns/NAME, /etc/netns/NAME[/FILE]); undefined for /etc/hosts and the directories. */
export function namespaceOfPath(path: string): string | undefined {
  const m = /^(?:\/run\/netns|\/etc\/netns)\/([^/]+)(?:\/|$)/.exec(path);
  return m?.[1];
}

/**
 * The namespaces a pass's resources name (an endpoint's netns, a resolver file's NS/FILE, a
 * magic DNS hosts file's /etc/netns/NS/hosts): every string in their specs and names, and the
 * namespace of every /etc/netns path among them. An event about a namespace outside this set
 * (and not the target) cannot change a plan: another daemon's hosts file, a namespace created
 * for somebody else.
 */
export function namespacesNamed(resources: Iterable<{ name: string; spec: Record<string, string | undefined> }>): Set<string> {
  const out = new Set<string>();
  const add = (v: string) => {
    out.add(v);
    const ns = namespaceOfPath(v);
    if (ns) out.add(ns);
  };
  for (const r of resources) {
    add(r.name);
    const slash = r.name.indexOf("/");
    if (slash > 0) out.add(r.name.slice(0, slash));
    for (const v of Object.values(r.spec)) if (typeof v === "string") add(v);
  }
  return out;
}

/** A read of the paths these watches are about: the namespace list, /etc/hosts, /etc/netns files (what their events make stale). */
export function readsNetnsFiles(argv: string[]): boolean {
  if (argv.join(" ") === "ip -j netns list") return true;
  if (!["cat", "tail", "find"].includes(argv[0] ?? "")) return false;
  const paths = argv.slice(1).filter((a) => a.startsWith("/"));
  return paths.length > 0 && paths.every((p) => p === "/etc/hosts" || p === NETNS_ETC || p.startsWith(`${NETNS_ETC}/`));
}
