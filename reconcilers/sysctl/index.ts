import type { Diagnostic } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import type { Intent } from "../../src/core/intent.js";
import type { OpLine, Reconciler, Resource } from "../../src/core/resource.js";
import type { Ns } from "../../src/exec/runner.js";
import { SYSCTLS, sysctlIntent } from "./intent.js";

/**
 * `[sysctl]`: only the keys listed. The kernel keeps no owner for a sysctl, so ownership is
 * the state store's record of the value before bolt changed it; destroy writes it back.
 * net.* keys are per network namespace: they are read and written inside the target.
 */
export const sysctlReconciler: Reconciler = {
  kind: "sysctl",
  // Forwarding is switched on only once the firewall is in place; per-interface keys
  // (net.ipv4.conf.IF.*) need their links.
  phases: { write: { after: ["network.link", "endpoint.inside", "wireguard.conf", "nft.table", "docker-user.rules"] } },
  // Implied keys: ip_forward for NAT, port forwards and mesh routing; src_valid_mark for an exit node.
  uses: ["network", "nft", "wireguard"],
  intent: sysctlIntent,
  replaceOn: [],
  adopts: true,

  desired(ctx) {
    const sysctls = fragment(ctx.intent, SYSCTLS);
    // Through a namespace target, only keys the kernel keeps per network namespace are that
    // namespace's own: kernel.*, vm.*, fs.* written via `ip netns exec` change the whole host.
    const diagnostics: Diagnostic[] =
      ctx.target === null
        ? []
        : sysctls
            .filter((s) => !s.key.startsWith("net."))
            .map((s) => ({
              severity: "error" as const,
              message: `sysctl "${s.key}" is not per network namespace: written through netns ${ctx.target} it would change the whole host`,
              source: s.source,
              hint: "only net.* keys can be set with --netns; set host-wide keys without --netns",
            }));
    // A value of the wrong shape (a word where the kernel keeps a number, one number where it
    // keeps a range) fails only at write time, mid-apply: refuse it here, at the key.
    for (const s of sysctls) {
      const now = ctx.live.get(`sysctl:${s.key}`)?.spec.value;
      const shape = (v: string) => (/^-?\d+( -?\d+)*$/.test(v) ? `${v.split(" ").length} integer(s)` : "text");
      const want = normalizeValue(s.value);
      if (now !== undefined && now !== "unknown" && shape(now) !== "text" && shape(want) !== shape(now))
        diagnostics.push({
          severity: "error",
          message: `sysctl "${s.key}" = "${s.value}": the kernel keeps ${shape(now)} here (now "${now}")`,
          source: s.source,
        });
    }
    if (diagnostics.length) return { resources: [], diagnostics };
    const resources = sysctls.map(
      (s): Resource => ({
        kind: "sysctl",
        name: s.key,
        id: `sysctl:${s.key}`,
        keys: [],
        spec: { value: normalizeValue(s.value) },
        deps: [],
        owned: true,
        source: s.source,
        fieldSources: { value: s.source },
      }),
    );
    return { resources, diagnostics };
  },

  async read(io, ctx) {
    const also = [...(ctx.also ?? [])].filter((id) => id.startsWith("sysctl:")).map((id) => id.slice("sysctl:".length));
    const keys = [...new Set([...fragment(ctx.intent, SYSCTLS).map((s) => s.key), ...ctx.originals.keys(), ...also])].sort();
    if (!keys.length) return { resources: [], foreign: new Map() };
    // One process for all keys; a missing key makes sysctl exit non-zero but print the rest.
    const r = await io.exec(["sysctl", ...keys]);
    const values = parseSysctl(r.stdout);
    const resources: Resource[] = [];
    const diagnostics: Diagnostic[] = [];
    for (const key of keys) {
      const value = values.get(key);
      const original = ctx.originals.get(key);
      if (value === undefined) {
        const src = fragment(ctx.intent, SYSCTLS).find((s) => s.key === key)?.source;
        if (src) diagnostics.push({ severity: "error", message: `sysctl "${key}" does not exist in this kernel (or namespace)`, source: src });
        continue;
      }
      resources.push({
        kind: "sysctl",
        name: key,
        id: `sysctl:${key}`,
        keys: [],
        spec: { value },
        ...(original === undefined ? {} : { restores: { value: original } }),
        deps: [],
        owned: original !== undefined,
      });
    }
    return { resources, foreign: new Map(), diagnostics };
  },

  render(change, ctx) {
    const key = change.name;
    const ns = ctx.target;
    const was = change.before as Resource<SysctlSpec> | undefined;
    if (change.action === "delete") {
      const original = was!.restores?.value ?? was!.spec.value;
      return [{ ...write(ns, key, original), phase: "write", undo: [write(ns, key, was!.spec.value)] }];
    }
    // No value before: the key does not exist here (reported by read); nothing to restore.
    const want = (change.after as Resource<SysctlSpec>).spec.value;
    return [{ ...write(ns, key, want), phase: "write", undo: was === undefined ? [] : [write(ns, key, was.spec.value)] }];
  },

  // A sysctl the export did not read (the config names a new key): its current value is unknown
  // offline. Planned as an adoption of "unknown"; applying re-reads the real value first.
  offlineLive: (intent: Intent) =>
    fragment(intent, SYSCTLS).map(
      (s): Resource => ({ kind: "sysctl", name: s.key, id: `sysctl:${s.key}`, keys: [], spec: { value: "unknown" }, data: {}, deps: [], owned: false }),
    ),

  commit(change, store, target) {
    if (change.action === "delete") store.dropOriginal(target, change.name);
    else if (change.action === "create") store.setOriginal(target, change.name, (change.before as Resource<SysctlSpec>).spec.value);
  },
};

/** A sysctl's comparable state: its value, whitespace normalised. */
type SysctlSpec = { value: string };

function write(ns: Ns, key: string, value: string): OpLine {
  return { tool: "exec", ns, args: ["sysctl", "-q", "-w", `${key}=${value}`] };
}

/** Multi-value keys print tab-separated (ip_local_port_range): compare on single spaces. */
export function normalizeValue(v: string): string {
  return v.trim().split(/\s+/).join(" ");
}

export function parseSysctl(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of out.split("\n")) {
    const i = l.indexOf(" = ");
    if (i > 0) m.set(l.slice(0, i).trim(), normalizeValue(l.slice(i + 3)));
  }
  return m;
}
