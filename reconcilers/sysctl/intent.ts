import type { Diagnostic, SourcePos } from "../../src/core/diagnostics.js";
import { fragment, fragmentKey } from "../../src/core/intent.js";
import type { IntentContext, IntentHooks } from "../../src/core/resource.js";
import type { LoadedFile } from "../../src/config/load.js";
import { duplicates } from "../../src/config/checks.js";
import { pointer } from "../../src/config/positions.js";
import { NETWORKS } from "../network/intent.js";
import type { NetworkIntent } from "../network/intent.js";
import { NFT } from "../nft/intent.js";
import type { NftIntent } from "../nft/intent.js";
import { WIREGUARD, fullTunnel } from "../wireguard/intent.js";
import type { MeshIntent } from "../wireguard/intent.js";

export interface SysctlIntent {
  key: string;
  value: string;
  source: SourcePos;
  /** set because another feature needs it (ip_forward for NAT), not written by the user */
  implied?: boolean;
}

export const SYSCTLS = fragmentKey<SysctlIntent[]>("sysctl", () => []);

export const sysctlIntent: IntentHooks = {
  build(files: LoadedFile[], ctx: IntentContext): SysctlIntent[] {
    const sysctls: SysctlIntent[] = [];
    for (const f of files) {
      if (f.kind !== "boltfile") continue;
      for (const [key, value] of Object.entries((f.data.sysctl ?? {}) as Record<string, unknown>))
        sysctls.push({ key, value: String(value), source: f.positions.key(pointer(["sysctl", key])) });
    }
    duplicates(
      sysctls,
      (s) => s.key,
      (s) => `sysctl "${s.key}" is set twice`,
      (s) => s.source,
      ctx.err,
    );
    const mesh = fragment(ctx.intent, WIREGUARD).mesh;
    impliedForwarding(fragment(ctx.intent, NETWORKS), fragment(ctx.intent, NFT), mesh, sysctls, ctx.diagnostics);
    impliedForwarding6(fragment(ctx.intent, NETWORKS), fragment(ctx.intent, NFT), mesh, sysctls, ctx.diagnostics);
    // A full tunnel (exit node in use): rp_filter must see the restored fwmark (see the nft mangle chains).
    const full = fullTunnel(fragment(ctx.intent, WIREGUARD));
    if (full && !sysctls.some((s) => s.key === "net.ipv4.conf.all.src_valid_mark"))
      sysctls.push({ key: "net.ipv4.conf.all.src_valid_mark", value: "1", source: full.mesh && mesh ? mesh.source : full.source, implied: true });
    return sysctls;
  },
  describe: (f) => `${((f as SysctlIntent[] | undefined) ?? []).length} sysctl(s)`,
};

/**
 * NAT and port forwards need the kernel to forward IPv4 (net.ipv4.ip_forward=1, per
 * namespace). bolt manages it like any listed sysctl (restored on destroy) unless the user
 * set it; setting it to 0 while needing it is an error.
 */
function impliedForwarding(networks: NetworkIntent[], nft: NftIntent | undefined, mesh: MeshIntent | undefined, sysctls: SysctlIntent[], diags: Diagnostic[]) {
  const meshRoutes = mesh && (mesh.advertise.length || mesh.exitNode) ? { source: mesh.source } : undefined;
  const needs = networks.find((n) => n.internet) ?? nft?.portForwards[0] ?? nft?.loadBalancers.find((l) => l.family === 4) ?? meshRoutes;
  if (!needs) return;
  const key = "net.ipv4.ip_forward";
  const explicit = sysctls.find((s) => s.key === key || s.key === "net.ipv4.conf.all.forwarding");
  if (!explicit) sysctls.push({ key, value: "1", source: needs.source, implied: true });
  else if (explicit.value.trim() === "0")
    diags.push({
      severity: "error",
      message: `sysctl ${explicit.key} = 0, but ${why(needs)}: both need IPv4 forwarding`,
      source: explicit.source,
    });
}

/**
 * IPv6 forwarding (net.ipv6.conf.all.forwarding=1) for a network whose IPv6 reaches out
 * (masquerade or routed) and for IPv6 port forwards; like IPv4's, restored on destroy, and an
 * explicit 0 while needed is an error. (Forwarding also makes the kernel ignore router
 * advertisements on every link of that namespace: a router does not autoconfigure.)
 */
/** What needs forwarding, in words (a network, a port forward, a load balancer, the mesh). */
function why(needs: { source: unknown } & Partial<{ name: string; subnet: unknown; backends: unknown; hostPort: number }>): string {
  if (needs.backends !== undefined) return `load balancer "${needs.name}" forwards to its backends`;
  if (needs.subnet !== undefined) return `network "${needs.name}" has internet = true`;
  if (needs.hostPort !== undefined) return "a port forward is declared";
  return "the mesh node routes subnets or is an exit node";
}

function impliedForwarding6(networks: NetworkIntent[], nft: NftIntent | undefined, mesh: MeshIntent | undefined, sysctls: SysctlIntent[], diags: Diagnostic[]) {
  const net = networks.find((n) => n.v6?.internet);
  const pf = nft?.portForwards.find((p) => p.v6) ?? nft?.loadBalancers.find((l) => l.family === 6);
  // A mesh exit node with IPv6, or a node routing IPv6 subnets, forwards IPv6 from the tunnel.
  const meshRoutes = mesh?.cidr6 && (mesh.exitNode || mesh.advertise6?.length) ? { source: mesh.source } : undefined;
  const needs = net ?? pf ?? meshRoutes;
  if (!needs) return;
  const key = "net.ipv6.conf.all.forwarding";
  const explicit = sysctls.find((s) => s.key === key);
  if (!explicit) sysctls.push({ key, value: "1", source: needs.source, implied: true });
  else if (explicit.value.trim() === "0")
    diags.push({
      severity: "error",
      message: `sysctl ${key} = 0, but ${net ? `network "${net.name}" has ipv6 internet = "${net.v6!.internet}"` : pf && "backends" in pf ? `load balancer "${pf.name}" forwards to its IPv6 backends` : pf ? "an IPv6 port forward is declared" : "the mesh node routes IPv6 subnets or is an exit node"}: both need IPv6 forwarding`,
      source: explicit.source,
    });
}
