import { fragment } from "../../src/core/intent.js";
import type { OpLine, Reconciler, RenderedOp, Resource } from "../../src/core/resource.js";
import type { Ns } from "../../src/exec/runner.js";
import { NETWORKS } from "../network/intent.js";
import { nftName } from "../nft/grammar.js";
import { NFT } from "../nft/intent.js";

/**
 * `[firewall] docker_conflict_resolution = true` on a Docker host: Docker sets the iptables
 * FORWARD policy to DROP, and in netfilter every base chain votes, so nothing in bolt's own
 * table can let bolt's bridges through. Docker documents one escape: rules in its DOCKER-USER
 * chain, evaluated first. bolt adds exactly two ACCEPT rules per bridge there, marked with the
 * comment `bolt:<bridge>`, and only ever inserts or deletes rules carrying that mark; without
 * a DOCKER-USER chain (no Docker) it does nothing.
 */
const CHAIN = "DOCKER-USER";
const PRESENT = "docker-user:(chain)";

export const dockerUserReconciler: Reconciler = {
  kind: "docker-user",
  // After bolt's own table, as before; the rules name bridges by name only.
  phases: { rules: { after: ["network.link", "nft.table"] } },
  uses: ["network", "nft"],
  replaceOn: [],

  desired(ctx) {
    if (!fragment(ctx.intent, NFT)?.dockerResolution || !ctx.live.has(PRESENT)) return { resources: [], diagnostics: [] };
    const resources = fragment(ctx.intent, NETWORKS).map(
      (n): Resource => ({
        kind: "docker-user",
        name: n.bridge,
        id: `docker-user:${n.bridge}`,
        keys: [],
        spec: { in: "accept", out: "accept" },
        deps: [`network:${n.name}`],
        owned: true,
        source: n.source,
      }),
    );
    return { resources, diagnostics: [] };
  },

  async read(io) {
    const r = await io.exec(["iptables-save", "-t", "filter"]).catch(() => ({ code: 127, stdout: "", stderr: "" }));
    if (r.code !== 0 || !r.stdout.includes(`:${CHAIN} `)) return { resources: [], foreign: new Map() };
    const rules = new Map<string, Record<string, string>>();
    // The whole chain as iptables-save prints it: what every undo restores (see render).
    const chain = r.stdout
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.startsWith(`-A ${CHAIN} `));
    for (const line of chain) {
      const m = new RegExp(`^-A ${CHAIN} (-i|-o) (\\S+) -m comment --comment "?bolt:(\\S+?)"? -j ACCEPT$`).exec(line);
      if (!m || m[2] !== m[3]) continue;
      const spec = rules.get(m[2]!) ?? {};
      spec[m[1] === "-i" ? "in" : "out"] = "accept";
      rules.set(m[2]!, spec);
    }
    const resources: Resource[] = [...rules].map(([br, spec]) => ({
      kind: "docker-user",
      name: br,
      id: `docker-user:${br}`,
      keys: [],
      spec,
      deps: [],
      owned: true,
    }));
    // Marks that the chain exists, so desired() knows the escape is available.
    resources.push({ kind: "docker-user", name: "(chain)", id: PRESENT, keys: [], spec: {}, data: { rules: chain }, deps: [], owned: false });
    return { resources, foreign: new Map() };
  },

  render(change, ctx) {
    const br = change.name;
    const ns = ctx.target;
    const want = change.action === "delete" ? {} : change.after!.spec;
    const have = change.before?.owned ? change.before.spec : {};
    // Every op's undo puts the whole chain back as it was read, in one iptables-restore: an -I
    // of a deleted rule would land at position 1, not where it was, and neither -I nor -D is
    // idempotent (a rollback of an op that never took effect, or a recovery that undoes every
    // started op, would duplicate or fail). Undone in reverse order, the last restore leaves
    // exactly the chain as it was. (Rules another tool added to DOCKER-USER during the apply are
    // part of what it restores away: Docker itself writes the chain only when it starts.)
    const undo = [restore(ns, (ctx.live.get(PRESENT)?.data?.rules as string[] | undefined) ?? [])];
    const ops: RenderedOp[] = [];
    for (const dir of ["in", "out"] as const) {
      if (want[dir] && !have[dir]) ops.push({ ...rule(ns, "-I", dir, br), phase: "rules", undo });
      if (!want[dir] && have[dir]) ops.push({ ...rule(ns, "-D", dir, br), phase: "rules", undo });
    }
    return ops;
  },
};

function rule(ns: Ns, verb: "-I" | "-D", dir: "in" | "out", bridge: string): OpLine {
  const b = nftName(bridge);
  return { tool: "exec", ns, args: ["iptables", verb, CHAIN, dir === "in" ? "-i" : "-o", b, "-m", "comment", "--comment", `bolt:${b}`, "-j", "ACCEPT"] };
}

/**
 * DOCKER-USER exactly as `rules` (iptables-save lines): with --noflush only the chains the input
 * names are touched, and a user chain it names is flushed first.
 */
function restore(ns: Ns, rules: string[]): OpLine {
  return { tool: "exec", ns, args: ["iptables-restore", "--noflush"], stdin: ["*filter", `:${CHAIN} - [0:0]`, ...rules, "COMMIT", ""].join("\n") };
}
