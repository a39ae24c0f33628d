import { formatIp4 } from "../../src/core/ipv4.js";
import { restoreFileOp, writeFileOp } from "../../src/core/file-ops.js";
import { fragment } from "../../src/core/intent.js";
import type { OpLine, Reconciler, RenderedOp, Resource } from "../../src/core/resource.js";
import type { Ns } from "../../src/exec/runner.js";
import { WIREGUARD } from "../wireguard/intent.js";

/**
 * GhostWire magic DNS: `<hostname>.mesh` for every mesh node, as a managed block in the hosts
 * file the target resolves with — /etc/hosts for the host, /etc/netns/NAME/hosts for a network
 * namespace (`ip netns exec` bind-mounts it over /etc/hosts). Only the block between bolt's
 * markers is ever changed; a namespace hosts file bolt had to create is removed on destroy.
 */
export const BEGIN = "# BEGIN bolt magic_dns (managed by bolt; edits here are overwritten)";
/** Marks a namespace hosts file bolt created (and so deletes on destroy). */
const CREATED = " [file created by bolt]";
export const END = "# END bolt magic_dns";

export function hostsPath(target: Ns): string {
  return target === null ? "/etc/hosts" : `/etc/netns/${target}/hosts`;
}

/** Marks a block after which bolt had to add a newline the file did not end with (removed again on delete). */
const NEWLINE_ADDED = " [newline added by bolt]";

/**
 * The text before and after bolt's block, cut at exact byte positions (the file's own blank
 * lines, final newline or lack of one are kept as they were), and the block's entries.
 */
export function splitBlock(text: string): { before: string; block: string[] | undefined; after: string; created: boolean; newlineAdded: boolean } {
  // The BEGIN line starts the text or follows a newline; END is a later line of its own.
  const b = text.startsWith(BEGIN) ? 0 : text.indexOf(`\n${BEGIN}`) + 1 || -1;
  const endAt = b < 0 ? -1 : text.indexOf(`\n${END}`, b);
  if (endAt < 0) return { before: text, block: undefined, after: "", created: false, newlineAdded: false };
  const beginLine = text.slice(b, text.indexOf("\n", b));
  let e = endAt + 1 + END.length;
  if (text[e] === "\n") e++;
  return {
    before: text.slice(0, b),
    block: text.slice(text.indexOf("\n", b) + 1, endAt).split("\n"),
    after: text.slice(e),
    created: beginLine.includes(CREATED),
    newlineAdded: beginLine.includes(NEWLINE_ADDED),
  };
}

export const hostsReconciler: Reconciler = {
  kind: "hosts",
  // The file goes in its directory (/etc/netns/NAME), and names addresses the interface has;
  // last of all, so a name never resolves before its address answers.
  phases: { dir: {}, file: { after: ["dir", "wireguard.addr", "sysctl.write"] } },
  uses: ["wireguard"],
  replaceOn: [],

  desired(ctx) {
    const m = fragment(ctx.intent, WIREGUARD).mesh;
    if (!m?.magicDns) return { resources: [], diagnostics: [] };
    const wg = ctx.desired.find((r) => r.id === `wireguard:${m.ifname}`);
    const selfAddr = wg?.spec.address ? wg.spec.address.split("/")[0]! : formatIp4(m.self.address);
    const entries = [`${selfAddr} ${m.self.hostname}.mesh`, ...m.peers.map((p) => `${formatIp4(p.address)} ${p.hostname}.mesh`)];
    const r: Resource = {
      kind: "hosts",
      name: "magic_dns",
      id: "hosts:magic_dns",
      keys: [],
      spec: { file: hostsPath(ctx.target), entries: entries.join("; ") },
      deps: [`wireguard:${m.ifname}`],
      owned: true,
      source: m.source,
    };
    return { resources: [r], diagnostics: [] };
  },

  async read(io) {
    const path = hostsPath(io.target);
    const [file, base] = await Promise.all([
      io.exec(["cat", path], null),
      io.target === null ? Promise.resolve(undefined) : io.exec(["cat", "/etc/hosts"], null),
    ]);
    const exists = file.code === 0;
    const { block } = splitBlock(exists ? file.stdout : "");
    const data = { exists, text: exists ? file.stdout : "", base: base?.code === 0 ? base.stdout : "127.0.0.1 localhost\n" };
    if (!block)
      return { resources: [{ kind: "hosts", name: "magic_dns", id: "hosts:magic_dns", keys: [], spec: {}, data, deps: [], owned: false }], foreign: new Map() };
    return {
      resources: [
        {
          kind: "hosts",
          name: "magic_dns",
          id: "hosts:magic_dns",
          keys: [],
          spec: { file: path, entries: block.filter(Boolean).join("; ") },
          data,
          deps: [],
          owned: true,
        },
      ],
      foreign: new Map(),
    };
  },

  /** Only when a namespace hosts file is to be created: which of its directories exist already (so an undo removes only what bolt made). */
  async prepare(changes, io) {
    const c = changes[0];
    if (!c?.after || io.target === null || c.before?.data?.exists) return { diagnostics: [] };
    const dir = `/etc/netns/${io.target}`;
    const [parent, own] = await Promise.all([io.exec(["test", "-d", "/etc/netns"], null), io.exec(["test", "-d", dir], null)]);
    return { diagnostics: [], prepared: new Map([[c.id, { made: [...(own.code !== 0 ? [dir] : []), ...(parent.code !== 0 ? ["/etc/netns"] : [])] }]]) };
  },

  render(change, ctx): RenderedOp[] {
    const path = hostsPath(ctx.target);
    const live = change.before ?? ctx.live.get("hosts:magic_dns");
    const exists = !!live?.data?.exists;
    const current = exists ? String(live!.data!.text) : "";
    const restore: OpLine[] = [...(exists && ctx.target !== null ? [mkdir(ctx.target)] : []), restoreFileOp(path, { exists, text: current })];
    if (change.action === "delete") {
      const { before, after, created, newlineAdded } = splitBlock(current);
      if (created) {
        // rmdir only succeeds when bolt's file was all there was in /etc/netns/NAME.
        return [
          { tool: "exec", ns: null, args: ["rm", "-f", path], phase: "file", undo: restore },
          { tool: "exec", ns: null, args: ["rmdir", "--ignore-fail-on-non-empty", `/etc/netns/${ctx.target}`], phase: "dir", undo: [] },
        ];
      }
      // Byte for byte what was there before bolt's block (its newline, if bolt added one, goes too).
      const rest = newlineAdded && !after && before.endsWith("\n") ? before.slice(0, -1) + after : before + after;
      return [{ ...writeFileOp(path, rest), phase: "file", undo: restore }];
    }
    const base = exists ? current : String(live?.data?.base ?? "127.0.0.1 localhost\n");
    const split = splitBlock(base);
    const created = ctx.target !== null && (!exists || splitBlock(current).created);
    // A file that does not end with a newline gets one before the block (and loses it with it).
    const newlineAdded = split.block ? split.newlineAdded : split.before !== "" && !split.before.endsWith("\n");
    const flags = (created ? CREATED : "") + (newlineAdded ? NEWLINE_ADDED : "");
    const block = [BEGIN + flags, ...change.after!.spec.entries!.split("; "), END].join("\n");
    const text = (split.block ? split.before : split.before + (newlineAdded ? "\n" : "")) + block + "\n" + split.after;
    const mk: OpLine[] = ctx.target !== null && !exists ? [mkdir(ctx.target)] : [];
    // Undo removes the directories mkdir made (innermost first); offline nothing is known: none.
    const made = (ctx.prepared.get(change.id)?.made as string[] | undefined) ?? [];
    const rmdirs: OpLine[] = made.map((d) => ({ tool: "exec", ns: null, args: ["rmdir", d] }));
    // mkdir in the file's phase: the same batch as the write, just before it.
    return [...mk.map((l) => ({ ...l, phase: "file", undo: rmdirs })), { ...writeFileOp(path, text), phase: "file", undo: restore }];
  },
};

function mkdir(target: string): OpLine {
  return { tool: "exec", ns: null, args: ["mkdir", "-p", `/etc/netns/${target}`] };
}
