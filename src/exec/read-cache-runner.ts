import type { ChangeClock } from "./change-clock.js";
import type { CommandRunner, Ns, RunOptions, RunResult } from "./runner.js";
import { readTopics, unwrapNetns, writeTopics } from "./read-topics.js";
import type { Topic, Topics } from "./read-topics.js";

/**
 * The daemon's live kernel cache (Felix's model): reads of the target namespace's links,
 * addresses, routes, rules and of bolt's nft table are answered from the last read until the
 * kernel says something changed — `ip monitor link address route rule` and `nft monitor` in the
 * target (watch/kernel-monitor.ts) call `invalidate()` on every event — so a plan in the warm
 * daemon that nothing has touched costs no read process. The safety nets:
 * - only reads the monitors cover are kept: `ip -j` shows of the target namespace itself (an
 *   endpoint's own namespace sends the target no events), `nft -j`/`-s list` there, read-only
 *   `ip -j -batch` of the target, and the namespace list and /etc/netns files while their inotify
 *   watches are in place (`covered`); everything else (wg, sysctl, tc, other files, other
 *   namespaces) runs every time;
 * - any command not known to be a read (a write batch, nft -f, wg set, sysctl -w, a file write,
 *   anything new) drops the cache before it runs and again when it ends;
 * - while a monitor is not running (started, crashed, restarting), nothing is cached;
 * - a read that was in flight when an event came is not kept;
 * - the periodic resync drops the cache before its pass (the deep read the cache cannot replace).
 */
export class ReadCacheRunner implements CommandRunner, ChangeClock {
  private readonly cache = new Map<string, { topics: Topics; result: Promise<RunResult> }>();
  private generation = 0;
  /** per topic, how often it was invalidated: a read in flight across an invalidation of one of its topics is not kept */
  private readonly topicGens = new Map<Topic | "all", number>();
  /** answers served from the cache, and reads that ran (the bench and tests read them) */
  hits = 0;
  misses = 0;
  /** BOLT_READ_CACHE=0 turns it off (every read goes to the kernel: the bench's "before") */
  private readonly enabled = process.env.BOLT_READ_CACHE !== "0";

  constructor(
    private readonly inner: CommandRunner,
    private readonly target: Ns,
    /** whether every monitor is running now (no events are being lost) */
    private readonly live: () => boolean,
    /** reads outside rtnetlink and nf_tables that other events cover now (watch/netns-files-watch.ts) */
    private readonly covered: (argv: string[]) => boolean = () => false,
  ) {}

  /**
   * Something changed: the clock moves (core/plan-memo.ts) and cached answers go — all of them,
   * or those about `topics` (a route event says nothing about links, nft or /etc/netns).
   */
  invalidate(topics: Topics = "all"): void {
    this.generation++;
    if (topics === "all") {
      this.cache.clear();
      this.topicGens.set("all", (this.topicGens.get("all") ?? 0) + 1);
      return;
    }
    if (!topics.size) return;
    for (const t of topics) this.topicGens.set(t, (this.topicGens.get(t) ?? 0) + 1);
    for (const [k, v] of this.cache) if (overlaps(v.topics, topics)) this.cache.delete(k);
  }

  /** The invalidations so far of what `topics` depend on (compared before and after a read). */
  private stamp(topics: Topics): string {
    const all = this.topicGens.get("all") ?? 0;
    return topics === "all" ? `${all}:${this.generation}` : `${all}:${[...topics].map((t) => this.topicGens.get(t) ?? 0).join(",")}`;
  }

  /** The change counter (events, writes, resyncs), while every monitor runs; undefined otherwise (ChangeClock). */
  now(): number | undefined {
    return this.enabled && this.live() ? this.generation : undefined;
  }

  classify(argv: string[], stdin: string | undefined): "cacheable" | "read" | "write" {
    const kind = classify(argv, stdin, this.target, { iptablesNft: this.iptablesNft });
    return kind === "read" && this.covered(argv) ? "cacheable" : kind;
  }

  /** iptables-save is iptables-nft's: its tables are nf_tables tables, whose changes `nft monitor` reports */
  private iptablesNft = false;

  /** Learns once (at start) whether iptables is the nf_tables variant ("iptables-save v1.8.9 (nf_tables)"). */
  async probeIptables(): Promise<void> {
    const r = await this.inner.run(["iptables-save", "-V"]).catch(() => undefined);
    this.iptablesNft = !!r && r.code === 0 && /\(nf_tables\)/.test(r.stdout + r.stderr);
  }

  async run(argv: string[], stdin?: string, opts?: RunOptions): Promise<RunResult> {
    const kind = this.classify(argv, stdin);
    if (kind === "write") {
      // Before (nothing read during the write is kept) and after (its events may not have come yet).
      const topics = writeTopics(argv, stdin, this.target);
      this.invalidate(topics);
      try {
        return await this.inner.run(argv, stdin, opts);
      } finally {
        // (The clock moves even for a write no cached read is about, wg set: a memo's reads are older than it.)
        this.invalidate(topics);
      }
    }
    if (kind === "read" || !this.enabled || !this.live()) return this.inner.run(argv, stdin, opts);
    const key = `${argv.join("\0")}\n${stdin ?? ""}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.hits++;
      return hit.result;
    }
    this.misses++;
    const topics = readTopics(argv, stdin);
    const gen = this.stamp(topics);
    const p = this.inner.run(argv, stdin, opts).then((r) => {
      // A failed read, or one an event about it overtook, is not an answer for later (a file
      // that is not there is: its watch says when it appears).
      if ((r.code !== 0 && !this.covered(argv) && !failureIsAnswer(argv)) || r.timedOut || r.aborted || gen !== this.stamp(topics)) {
        if (this.cache.get(key)?.result === p) this.cache.delete(key);
      }
      return r;
    });
    this.cache.set(key, { topics, result: p });
    p.catch(() => this.cache.delete(key));
    return p;
  }
}

/**
 * Reads whose failure is an answer the same events cover, kept like a success:
 * `nft list table inet bolt` where bolt made no table (a mesh host without ACLs) stays failed
 * until a table is made, which `nft monitor` reports; in `ip -force -batch` the lines that fail
 * (a `route get` of an unreachable peer endpoint) are decided by the routes, as those that succeed.
 */
function failureIsAnswer(argv: string[]): boolean {
  const a = unwrapNetns(argv).argv;
  return (a[0] === "nft" && a.includes("list")) || (a[0] === "ip" && a.includes("-force") && a.includes("-batch"));
}

function overlaps(a: Topics, b: ReadonlySet<Topic>): boolean {
  return a === "all" || [...b].some((t) => a.has(t));
}

/** "cacheable": covered by the target's monitors; "read": changes nothing, not cached; "write": anything else. */
/** `iptablesNft`: iptables is the nf_tables variant, so `nft monitor` reports what iptables-save shows. */
export function classify(argv: string[], stdin: string | undefined, target: Ns, o: { iptablesNft?: boolean } = {}): "cacheable" | "read" | "write" {
  const { argv: a, ns } = unwrapNetns(argv);
  const inTarget = ns === target;
  const tool = a[0] ?? "";
  const words = a.slice(1).filter((w) => !w.startsWith("-"));
  const flags = a.slice(1).filter((w) => w.startsWith("-"));
  if (tool === "ip") {
    if (flags.includes("-batch")) {
      const lines = (stdin ?? "").split("\n").filter((l) => l.trim());
      if (!lines.every((l) => /^\S+ (show|list|lst|get)\b/.test(l))) return "write";
      return inTarget && flags.includes("-j") && !lines.some((l) => /^(netns|neigh)\b/.test(l)) ? "cacheable" : "read";
    }
    const verb = words[1] ?? "show";
    if (!["show", "list", "lst", "get"].includes(verb)) return words[0] === "monitor" ? "read" : "write";
    // The namespace list is not an rtnetlink event of the target; neighbours are not monitored.
    return inTarget && flags.includes("-j") && ["link", "l", "address", "addr", "a", "route", "r", "ro", "rule", "ru"].includes(words[0] ?? "")
      ? "cacheable"
      : "read";
  }
  if (tool === "nft") {
    if (flags.includes("-f") || flags.includes("-c") || flags.includes("--file")) return "write";
    if (words[0] === "list") return inTarget ? "cacheable" : "read";
    return words[0] === "monitor" ? "read" : "write";
  }
  if (tool === "sysctl") return flags.includes("-w") || a.some((w) => w.includes("=")) ? "write" : "read";
  if (tool === "wg") return words[0] === "show" || words[0] === "showconf" ? "read" : "write";
  if (tool === "tc")
    return words.some((w) => ["add", "del", "delete", "replace", "change"].includes(w)) || (flags.includes("-batch") && !isReadBatch(stdin)) ? "write" : "read";
  if (tool === "bpftool") return words.some((w) => ["show", "list", "dump", "lookup"].includes(w)) && !words.includes("load") ? "read" : "write";
  if (["iptables", "ip6tables"].includes(tool))
    return flags.some((f) => ["-S", "-L", "-C", "--list", "--list-rules", "--check"].includes(f)) ? "read" : "write";
  if (tool === "iptables-save" || tool === "ip6tables-save") return inTarget && o.iptablesNft ? "cacheable" : "read";
  if (tool === "birdc") return words[0] === "show" ? "read" : "write";
  // find that only prints or reads (the resolver's one read of /etc/netns): -exec of a reader only.
  if (tool === "find") {
    const execs = a.flatMap((w, i) => (w === "-exec" || w === "-execdir" ? [a[i + 1] ?? ""] : []));
    return a.includes("-delete") || a.includes("-ok") || execs.some((c) => !READERS.includes(c)) ? "write" : "read";
  }
  // modprobe -n only says whether a module could be loaded (the wireguard kind's probe, every pass).
  if (tool === "modprobe") return flags.some((f) => f === "-n" || f === "--dry-run" || (/^-[a-z]+$/.test(f) && f.includes("n"))) ? "read" : "write";
  return READERS.includes(tool) ? "read" : "write";
}

/** Tools that only read, run directly or as find's -exec. */
const READERS = ["cat", "tail", "head", "stat", "test", "grep", "zgrep", "readlink", "ls", "iptables-save", "ip6tables-save", "iptables-legacy-save"];

function isReadBatch(stdin: string | undefined): boolean {
  return (stdin ?? "")
    .split("\n")
    .filter((l) => l.trim())
    .every((l) => /^\S+ (show|list)\b/.test(l));
}
