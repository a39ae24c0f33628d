import { fragment } from "../../src/core/intent.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { OpLine, PlanContext, Reconciler, RenderedOp, Resource } from "../../src/core/resource.js";
import { ENDPOINTS } from "../endpoint/intent.js";
import type { EndpointIntent } from "../endpoint/intent.js";
import { BEGIN as MAGIC_DNS_BEGIN } from "../hosts/index.js";
import { NETNS_DIR, NO_NETNS_DIR, filePath, readNetnsFiles } from "./files.js";
import type { FileName } from "./files.js";
import { MAX_NAMESERVERS, RESOLVER, resolverIntent } from "./intent.js";
import type { NetworkResolver } from "./intent.js";
import { digest, ownedText, ownerOf, parseOwned } from "./owned-file.js";
import type { Original } from "./owned-file.js";
import { hostsBody, hostsEntries, resolvBody, resolvFields } from "./render.js";

/**
 * Name resolution inside endpoint namespaces, as `ip netns exec` provides it: it bind-mounts
 * every file of /etc/netns/NS over the same name in /etc. Per namespace, `resolv.conf` with
 * the nameservers and search domains of its networks (its default network's first), and
 * `hosts` with localhost and every endpoint of its networks by name (discovery). Whole files,
 * each marked as bolt's on its first line; one that was there before is put back on destroy.
 */
export const resolverReconciler: Reconciler = {
  kind: "resolver",
  // Written once the namespaces' addresses are up: a name never resolves before it answers.
  phases: { file: { after: ["endpoint.inside"] } },
  uses: ["network", "endpoint", "hosts"],
  intent: resolverIntent,
  replaceOn: [],

  desired(ctx) {
    const diagnostics: Diagnostic[] = [];
    const resources: Resource[] = [];
    const nets = new Map(fragment(ctx.intent, RESOLVER).map((r) => [r.network, r]));
    const eps = new Map(ctx.desired.filter((r) => r.kind === "endpoint").map((r) => [r.name, r]));
    const plugged = fragment(ctx.intent, ENDPOINTS).filter((e) => e.mode === "bridge" && eps.has(e.name));
    // The mesh's magic DNS writes its block into the target's own namespace hosts file.
    const magic = new Set(ctx.desired.filter((r) => r.kind === "hosts" && r.spec.file).map((r) => r.spec.file!));
    const hostsMemo = new Map<string, string[]>();
    for (const [ns, members] of namespaces(plugged)) {
      const networks = members.map((e) => nets.get(e.network)).filter((n): n is NetworkResolver => !!n);
      const deps = members.map((e) => `endpoint:${e.name}`);
      const dns = dedupe(networks.flatMap((n) => n.dns));
      if (dns.length > MAX_NAMESERVERS)
        diagnostics.push({
          severity: "warning",
          message: `namespace "${ns}": its networks name ${dns.length} nameservers; glibc reads ${MAX_NAMESERVERS}, so ${dns.slice(MAX_NAMESERVERS).join(", ")} are left out`,
          source: networks[networks.length - 1]?.fieldSources.dns ?? members[0]!.source,
        });
      if (dns.length) {
        const search = dedupe(networks.flatMap((n) => n.search));
        const src = networks.find((n) => n.dns.length)!;
        const r = fileResource(
          ctx,
          ns,
          "resolv.conf",
          resolvBody(dns.slice(0, MAX_NAMESERVERS), search),
          deps,
          src.fieldSources.dns ?? src.source,
          diagnostics,
        );
        if (r) resources.push(r);
      }
      const discovering = networks.filter((n) => n.discovery);
      if (!discovering.length) continue;
      const key = discovering.map((n) => n.network).join("\0");
      if (!hostsMemo.has(key))
        hostsMemo.set(
          key,
          hostsBody(
            discovering.map((n) => n.network),
            plugged,
            eps,
          ),
        );
      const path = filePath(ns, "hosts");
      const at = discovering[0]!.fieldSources.discovery ?? discovering[0]!.source;
      if (magic.has(path)) {
        diagnostics.push({
          severity: "error",
          message: `namespace "${ns}" is this target's own, whose hosts file carries the mesh's magic DNS names; discovery would write the same file`,
          source: at,
          hint: `set discovery = false on network "${discovering[0]!.network}", or give the endpoint its own namespace (netns = …)`,
        });
        continue;
      }
      const r = fileResource(ctx, ns, "hosts", hostsMemo.get(key)!, deps, at, diagnostics);
      if (r) resources.push(r);
    }
    return { resources, diagnostics };
  },

  async read(io, ctx) {
    const { files, dirExists } = await readNetnsFiles(io);
    // Foreign files matter only where the config puts an endpoint (they are kept and put back).
    const named = new Set(fragment(ctx.intent, ENDPOINTS).flatMap((e) => (e.netns ? [e.netns] : [])));
    const resources: Resource[] = [];
    for (const [path, text] of files) {
      const [, , , ns, name] = path.split("/") as [string, string, string, string, FileName];
      const owner = ownerOf(text);
      const base = { kind: "resolver", name: `${ns}/${name}`, id: `resolver:${ns}/${name}`, keys: [], deps: [] };
      const magicDns = text.startsWith(MAGIC_DNS_BEGIN) || text.includes(`\n${MAGIC_DNS_BEGIN}`);
      if (owner && owner.target === io.target) {
        const { body, original } = parseOwned(text);
        resources.push({ ...base, spec: specOf(path, name, body, text), data: { text, original, magicDns }, owned: true });
      } else if (named.has(ns)) {
        resources.push({ ...base, spec: {}, data: { text, otherTarget: owner ? (owner.target ?? "the host namespace") : undefined, magicDns }, owned: false });
      }
    }
    const facts: Record<string, string> = dirExists ? {} : { [NO_NETNS_DIR]: "yes" };
    return { resources, foreign: new Map(), facts };
  },

  render(change, ctx): RenderedOp[] {
    const path = (change.after ?? change.before)!.spec.file!;
    const live = change.before ?? ctx.live.get(change.id);
    const current: Original = live ? { exists: true, text: String(live.data!.text) } : { exists: false, text: "" };
    // The first file bolt writes may make /etc/netns too: its undo takes that away again.
    const undo = [restore(path, current), ...(!current.exists && ctx.facts.get(NO_NETNS_DIR) === "yes" ? [rmdir(NETNS_DIR)] : [])];
    if (change.action === "delete") {
      const original = live!.data!.original as Original;
      return [{ ...restore(path, original), phase: "file", undo }];
    }
    return [{ ...write(path, String(change.after!.data!.text)), phase: "file", undo }];
  },
};

/** Bridge-mode veth endpoints by namespace, the routed one (its default network) first. */
function namespaces(plugged: EndpointIntent[]): Map<string, EndpointIntent[]> {
  const byNs = new Map<string, EndpointIntent[]>();
  for (const e of plugged) if (e.type === "veth" && e.netns) byNs.set(e.netns, [...(byNs.get(e.netns) ?? []), e]);
  for (const [ns, members] of byNs) byNs.set(ns, [...members.filter((e) => e.default !== false), ...members.filter((e) => e.default === false)]);
  return byNs;
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** One file's desired resource, keeping what was there before; undefined (and an error) when it is another writer's. */
function fileResource(
  ctx: PlanContext,
  ns: string,
  name: FileName,
  body: string[],
  deps: string[],
  source: Resource["source"],
  diagnostics: Diagnostic[],
): Resource | undefined {
  const path = filePath(ns, name);
  const id = `resolver:${ns}/${name}`;
  const live = ctx.live.get(id);
  const refuse = (what: string, hint: string) => {
    diagnostics.push({ severity: "error", message: `namespace "${ns}": ${path} ${what}`, source, hint });
    return undefined;
  };
  if (live?.data?.otherTarget !== undefined)
    return refuse(
      `is bolt's for ${String(live.data.otherTarget)} (another target)`,
      "one namespace's files belong to one bolt target: give the endpoint its own namespace",
    );
  if (live?.data?.magicDns)
    return refuse(
      "carries the mesh's magic DNS block (bolt's hosts kind for a target of that name)",
      name === "hosts" ? "set discovery = false on the network, or give the endpoint its own namespace" : "remove the block",
    );
  const original: Original = live?.owned
    ? (live.data!.original as Original)
    : live
      ? { exists: true, text: String(live.data!.text) }
      : { exists: false, text: "" };
  const text = ownedText(ctx.target, body, original);
  return {
    kind: "resolver",
    name: `${ns}/${name}`,
    id,
    keys: [],
    spec: specOf(path, name, body, text),
    data: { text, original },
    deps,
    owned: true,
    source,
    fieldSources: source ? { file: source, nameservers: source, search: source, entries: source, content: source } : undefined,
  };
}

/** What the plan shows and compares: the parsed lines (nameservers; how many address lines a hosts file has) and the whole file's digest. */
function specOf(path: string, name: FileName, body: string[], text: string): Record<string, string> {
  if (name === "resolv.conf") return { file: path, ...resolvFields(body), content: digest(text) };
  return { file: path, entries: String(hostsEntries(body)), content: digest(text) };
}

function rmdir(dir: string): OpLine {
  return { tool: "files", ns: null, args: ["rmdir", dir] };
}

function write(path: string, text: string): OpLine {
  return { tool: "files", ns: null, args: ["write", path], stdin: text };
}

/** Back to a file's earlier state: its text, or no file (and no directory left empty by that). */
function restore(path: string, before: Original): OpLine {
  return before.exists ? write(path, before.text) : { tool: "files", ns: null, args: ["remove", path] };
}
