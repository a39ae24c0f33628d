import { isFilesHelper } from "./files-tool.js";

/**
 * What the daemon's cached reads are about, so that an event or a write forgets only the reads
 * it can have made stale: a route added (`wg set` plus an allowed-IP route for a mesh peer)
 * leaves the links, addresses, rules, nft ruleset and namespace files cached.
 *   link, addr, route, rule — rtnetlink, as `ip monitor label` tags its lines
 *   nft   — the nf_tables ruleset (nft list, iptables-nft's iptables-save)
 *   files — the namespace list and the /etc/netns and /etc/hosts files (inotify)
 */
export type Topic = "link" | "addr" | "route" | "rule" | "nft" | "files";
export type Topics = ReadonlySet<Topic> | "all";

/**
 * The command a netns wrapper runs, and the named namespace it runs in (`ip netns exec NS`,
 * `ip -n NS`; null when none is named, as for `nsenter --net=…`, which enters by path).
 */
export function unwrapNetns(argv: string[]): { argv: string[]; ns: string | null } {
  if (argv[0] === "ip" && argv[1] === "netns" && argv[2] === "exec") return { argv: argv.slice(4), ns: argv[3] ?? null };
  if (argv[0] === "ip" && argv[1] === "-n") return { argv: ["ip", ...argv.slice(3)], ns: argv[2] ?? null };
  if (argv[0] === "nsenter") return { argv: argv.slice(argv.indexOf("--") + 1), ns: null };
  return { argv, ns: null };
}

const unwrap = (argv: string[]) => unwrapNetns(argv).argv;

/** The object an ip command (or batch line) is about: link, addr, route, rule, … (ip's own abbreviations). */
function ipObject(words: string[]): string {
  const w = words.find((x) => !x.startsWith("-")) ?? "";
  if (["l", "li", "lin", "link"].includes(w)) return "link";
  if (["a", "ad", "add", "addr", "addre", "addres", "address"].includes(w)) return "addr";
  if (["r", "ro", "rou", "rout", "route"].includes(w)) return "route";
  if (["ru", "rul", "rule"].includes(w)) return "rule";
  return w;
}

function ipLines(a: string[], stdin: string | undefined): string[][] {
  if (!a.includes("-batch")) return [a.slice(1)];
  return (stdin ?? "")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => l.trim().split(/\s+/));
}

/**
 * What a cached read's answer depends on. `ip addr show` prints each link's flags and MTU too,
 * a route's flags follow its link (linkdown) and an address brings its prefix route.
 */
export function readTopics(argv: string[], stdin: string | undefined): Topics {
  const a = unwrap(argv);
  const tool = a[0] ?? "";
  if (tool === "ip") {
    if (a.includes("netns")) return new Set(["files"]);
    const out = new Set<Topic>();
    for (const words of ipLines(a, stdin)) {
      const o = ipObject(words);
      if (o === "link") out.add("link");
      else if (o === "addr") for (const t of ["addr", "link"] as const) out.add(t);
      else if (o === "route") for (const t of ["route", "link", "addr"] as const) out.add(t);
      else if (o === "rule") out.add("rule");
      else return "all";
    }
    return out;
  }
  if (tool === "nft" || /^ip6?tables(-nft)?-save$/.test(tool)) return new Set(["nft"]);
  if (["cat", "tail", "find"].includes(tool)) return new Set(["files"]);
  return "all";
}

/**
 * What a write may change. A link's deletion takes its addresses and routes, an address brings
 * or takes its prefix route; `wg set` changes WireGuard state only (read with `wg show`, never
 * cached); anything not known here (sysctl -w can drop addresses, a namespace, a tc qdisc a
 * link shows) may change anything. `target`: the namespace the cached reads are of. A write in
 * another named namespace (an endpoint's own) reaches it only through a link (a veth whose peer
 * is in the target goes with it); a new namespace is a new name in the list and nothing else,
 * one deleted takes the veths it held.
 */
export function writeTopics(argv: string[], stdin: string | undefined, target?: string | null): Topics {
  if (isFilesHelper(argv)) return new Set(["files"]);
  const { argv: a, ns } = unwrapNetns(argv);
  const tool = a[0] ?? "";
  const elsewhere = target !== undefined && ns !== null && ns !== target;
  if (tool === "wg") return new Set();
  if (elsewhere && tool !== "ip") return new Set();
  if (tool === "nft" || /^ip6?tables(-nft)?(-restore)?$/.test(tool)) return new Set(["nft"]);
  if (tool !== "ip") return "all";
  const out = new Set<Topic>();
  for (const words of ipLines(a, stdin)) {
    const o = ipObject(words);
    if (o === "netns") {
      const [verb = "", name = ""] = words.filter((w) => !w.startsWith("-")).slice(1);
      if (verb === "add" && name !== target) out.add("files");
      else if (verb === "del" || verb === "delete") for (const t of ["files", "link", "addr", "route"] as const) out.add(t);
      else return "all";
    } else if (o === "link") for (const t of ["link", "addr", "route"] as const) out.add(t);
    else if (elsewhere) continue;
    else if (o === "addr") for (const t of ["addr", "route"] as const) out.add(t);
    else if (o === "route") out.add("route");
    else if (o === "rule") out.add("rule");
    else if (o !== "neigh" && o !== "n") return "all";
  }
  return out;
}

const LABELS: Record<string, Topic> = { "[LINK]": "link", "[ADDR]": "addr", "[ROUTE]": "route", "[RULE]": "rule" };

/**
 * The topics of `ip monitor label` output, given in chunks as they arrive (a line may be split
 * between two): each event's first line starts with its label, its continuation lines are
 * indented. An unlabelled line (another tool's output, a label not known here) is everything.
 */
export class MonitorLines {
  private rest = "";

  topics(chunk: string): Topics {
    const text = this.rest + chunk;
    const end = text.lastIndexOf("\n");
    this.rest = text.slice(end + 1);
    const out = new Set<Topic>();
    for (const line of text.slice(0, end + 1).split("\n")) {
      if (!line.trim() || /^\s/.test(line)) continue;
      const t = LABELS[/^\[[A-Z]+\]/.exec(line)?.[0] ?? ""];
      if (!t) return "all";
      out.add(t);
    }
    return out;
  }
}
