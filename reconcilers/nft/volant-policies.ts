import type { SourcePos } from "../../src/core/diagnostics.js";
import type { Diagnostic } from "../../src/core/diagnostics.js";
import type { LoadedFile } from "../../src/config/load.js";
import { pointer } from "../../src/config/positions.js";
import { portRange } from "../../src/core/ports.js";
import { globMatch } from "./compile.js";
import type { SegmentIntent } from "./intent.js";

type Obj = Record<string, unknown>;

/**
 * Volant's network policies (`/etc/volant/network-policies.yaml`: top-level `policies`, or
 * `networking.policies` in volantd.yaml): each policy becomes a segment whose members are the VMs
 * (endpoints, never networks) its `vms` globs name, with its rules as "from any" policies and a
 * final drop — the schema's "traffic no rule allows is dropped for these VMs". Rules run in the
 * forward path like every segment, so they govern traffic routed to the VMs (from the uplink,
 * from other networks); two VMs on one bridge talk bridged, which inet hooks never see.
 */
export function volantPolicies(files: LoadedFile[], endpointNames: string[], diags: Diagnostic[]): SegmentIntent[] {
  const out: SegmentIntent[] = [];
  for (const f of files) {
    if (f.kind !== "volantd") continue;
    const lists: [string[], Obj[]][] = [
      [["policies"], (f.data.policies ?? []) as Obj[]],
      [["networking", "policies"], (((f.data.networking ?? {}) as Obj).policies ?? []) as Obj[]],
    ];
    for (const [base, list] of lists)
      list.forEach((raw, i) => {
        const at = (...p: (string | number)[]) => f.positions.value(pointer([...base, i, ...p]));
        const source: SourcePos = f.positions.key(pointer([...base, i]));
        const name = String(raw.name);
        const vms = (raw.vms ?? []) as string[];
        vms.forEach((g, k) => {
          if (!endpointNames.some((n) => globMatch(g, n)))
            diags.push({ severity: "warning", message: `volant policy "${name}": vms "${g}" matches no VM (endpoint) yet`, source: at("vms", k) });
        });
        const seg: SegmentIntent = { name: `volant:${name}`, members: vms, policies: [], source, endpointsOnly: true };
        ((raw.rules ?? []) as Obj[]).forEach((r, k) => {
          const protocol = (r.protocol as "tcp" | "udp" | "icmp" | "all" | undefined) ?? "all";
          const ports = r.port === undefined ? undefined : portRange(String(r.port));
          if (r.port !== undefined && (!ports || (protocol !== "tcp" && protocol !== "udp"))) {
            diags.push({
              severity: "error",
              message: `volant policy "${name}": a port needs protocol tcp or udp and a port or range N-M`,
              source: at("rules", k, "port"),
            });
            return;
          }
          const action = r.action === "allow" ? "allow" : "deny";
          const text = `${action} ${protocol}${ports ? `:${ports[0]}${ports[1] !== ports[0] ? `-${ports[1]}` : ""}` : ""} from any`;
          seg.policies.push({ action, protocol, ports, direction: "from", target: "any", source: f.positions.key(pointer([...base, i, "rules", k])), text });
        });
        seg.policies.push({ action: "deny", protocol: "all", direction: "from", target: "any", source, text: "deny all from any (what no rule allows)" });
        out.push(seg);
      });
  }
  return out;
}
