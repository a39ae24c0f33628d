import type { Resource } from "../core/resource.js";

/**
 * The desired-state graph: one node per resource, one edge per dependency, drawn from the
 * dependency to what needs it (a bridge before its endpoints). Node text is the kind, the name
 * and the one or two spec fields that identify the object in the kernel.
 */
export interface GraphNode {
  id: string;
  kind: string;
  label: string[];
}

export interface Graph {
  nodes: GraphNode[];
  edges: [from: string, to: string][];
}

/** Spec fields worth a line in a node, per kind; other kinds show their name only. */
const SHOWN: Record<string, string[]> = {
  network: ["bridge", "address"],
  endpoint: ["host_if", "ip"],
  sysctl: ["value"],
  wireguard: ["address", "listen_port"],
};

export function desiredGraph(resources: Resource[]): Graph {
  const ids = new Set(resources.map((r) => r.id));
  const nodes = resources.map((r) => ({
    id: r.id,
    kind: r.kind,
    label: [`${r.kind} "${r.name}"`, ...(SHOWN[r.kind] ?? []).filter((k) => r.spec[k] && !r.sensitive?.includes(k)).map((k) => `${k} = ${r.spec[k]}`)],
  }));
  const edges: [string, string][] = [];
  for (const r of resources) for (const d of r.deps) if (ids.has(d)) edges.push([d, r.id]);
  return { nodes, edges };
}

const SHAPE: Record<string, string> = { network: "box", endpoint: "ellipse", sysctl: "note", nft: "component" };

export function renderDot(g: Graph): string {
  const q = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  const out = ["digraph bolt {", "  rankdir=LR;", '  node [fontname="monospace", fontsize=10];'];
  // Line breaks in a label are the two characters \n (a raw newline is not a dot line break).
  const label = (lines: string[]) => `"${lines.map((l) => q(l).slice(1, -1)).join("\\n")}"`;
  for (const n of g.nodes) out.push(`  ${q(n.id)} [shape=${SHAPE[n.kind] ?? "box"}, label=${label(n.label)}];`);
  for (const [a, b] of g.edges) out.push(`  ${q(a)} -> ${q(b)};`);
  out.push("}");
  return out.join("\n") + "\n";
}

export function renderMermaid(g: Graph): string {
  // Mermaid ids are bare words: number the nodes; labels go in quotes with #quot; for quotes.
  const idOf = new Map(g.nodes.map((n, i) => [n.id, `n${i}`]));
  const text = (s: string[]) => `"${s.map((l) => l.replace(/"/g, "#quot;")).join("<br/>")}"`;
  const open: Record<string, [string, string]> = { network: ["[", "]"], endpoint: ["(", ")"], sysctl: ["[/", "/]"], nft: ["[[", "]]"] };
  const out = ["graph LR"];
  for (const n of g.nodes) {
    const [l, r] = open[n.kind] ?? ["[", "]"];
    out.push(`  ${idOf.get(n.id)}${l}${text(n.label)}${r}`);
  }
  for (const [a, b] of g.edges) out.push(`  ${idOf.get(a)} --> ${idOf.get(b)}`);
  return out.join("\n") + "\n";
}
