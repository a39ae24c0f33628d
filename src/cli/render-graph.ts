import type { Resource } from "../core/resource.js";
import { bytes } from "../core/stats.js";
import type { Stats } from "../core/stats.js";

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
  endpoint: ["host_if", "ip", "ip6"],
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

const SHAPE: Record<string, string> = { network: "box", endpoint: "ellipse", sysctl: "note", nft: "component", netns: "folder" };

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
  const open: Record<string, [string, string]> = { network: ["[", "]"], endpoint: ["(", ")"], sysctl: ["[/", "/]"], nft: ["[[", "]]"], netns: ["[(", ")]"] };
  const out = ["graph LR"];
  for (const n of g.nodes) {
    const [l, r] = open[n.kind] ?? ["[", "]"];
    out.push(`  ${idOf.get(n.id)}${l}${text(n.label)}${r}`);
  }
  for (const [a, b] of g.edges) out.push(`  ${idOf.get(a)} --> ${idOf.get(b)}`);
  return out.join("\n") + "\n";
}

/**
 * The topology read from the kernel (`bolt graph --live`): what bolt owns with its live state,
 * each veth endpoint's namespace as a node of its own, and traffic from a stats sample (rates
 * when two were taken). Edges as in the desired graph, plus endpoint → namespace.
 */
export function liveGraph(resources: Resource[], stats?: Stats): Graph {
  const g = desiredGraph(resources);
  const traffic = new Map<string, string>();
  const rate = (r: { rx_bytes_per_s: number; tx_bytes_per_s: number } | undefined) =>
    r ? ` (${bytes(Math.round(r.rx_bytes_per_s))}/s in, ${bytes(Math.round(r.tx_bytes_per_s))}/s out)` : "";
  for (const n of stats?.networks ?? []) traffic.set(`network:${n.name}`, `traffic = ${bytes(n.rx_bytes)} in, ${bytes(n.tx_bytes)} out${rate(n.rates)}`);
  for (const e of stats?.endpoints ?? []) traffic.set(`endpoint:${e.name}`, `traffic = ${bytes(e.rx_bytes)} in, ${bytes(e.tx_bytes)} out${rate(e.rates)}`);
  const peers = new Map((stats?.peers ?? []).map((p) => [`wg-peer:${p.interface}/${p.public_key}`, p]));
  const byId = new Map(resources.map((r) => [r.id, r]));
  for (const n of g.nodes) {
    const r = byId.get(n.id)!;
    if (r.spec.state && r.spec.state !== "up") n.label.push(`state = ${r.spec.state}`);
    const t = traffic.get(n.id);
    if (t) n.label.push(t);
    const p = peers.get(n.id);
    if (p)
      n.label.push(
        `handshake = ${p.handshake_age_s === null ? "never" : `${p.handshake_age_s}s ago`}`,
        `traffic = ${bytes(p.rx_bytes)} in, ${bytes(p.tx_bytes)} out${rate(p.rates)}`,
      );
  }
  const spaces = new Set<string>();
  for (const r of resources)
    if (r.kind === "endpoint" && r.spec.netns) {
      const id = `netns:${r.spec.netns}`;
      if (!spaces.has(id)) g.nodes.push({ id, kind: "netns", label: [`netns "${r.spec.netns}"`] });
      spaces.add(id);
      g.edges.push([r.id, id]);
    }
  return g;
}

/**
 * A self-contained SVG (no Graphviz needed): nodes in columns by their depth in the dependency
 * order (a bridge left of its endpoints, an endpoint left of its namespace), one box per node
 * with its label lines, straight edges with arrowheads.
 */
export function renderSvg(g: Graph): string {
  const depth = new Map<string, number>();
  const incoming = new Map<string, string[]>();
  for (const [a, b] of g.edges) incoming.set(b, [...(incoming.get(b) ?? []), a]);
  const depthOf = (id: string, seen = new Set<string>()): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (seen.has(id)) return 0;
    seen.add(id);
    const d = Math.max(-1, ...(incoming.get(id) ?? []).map((p) => depthOf(p, seen))) + 1;
    depth.set(id, d);
    return d;
  };
  for (const n of g.nodes) depthOf(n.id);
  const CH = 7.2;
  const LINE = 15;
  const PAD = 8;
  const GAP_X = 60;
  const GAP_Y = 16;
  const size = (n: GraphNode) => ({ w: Math.max(...n.label.map((l) => l.length)) * CH + 2 * PAD, h: n.label.length * LINE + 2 * PAD });
  const columns: GraphNode[][] = [];
  for (const n of g.nodes) (columns[depth.get(n.id)!] ??= []).push(n);
  const pos = new Map<string, { x: number; y: number; w: number; h: number }>();
  let x = 20;
  let height = 0;
  for (const col of columns.filter(Boolean)) {
    const width = Math.max(...col.map((n) => size(n).w));
    let y = 20;
    for (const n of col) {
      const s = size(n);
      pos.set(n.id, { x, y, w: width, h: s.h });
      y += s.h + GAP_Y;
    }
    height = Math.max(height, y);
    x += width + GAP_X;
  }
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  const FILL: Record<string, string> = {
    network: "#e8f0fe",
    endpoint: "#e6f4ea",
    netns: "#f1f3f4",
    wireguard: "#fef7e0",
    "wg-peer": "#fce8e6",
    nft: "#f3e8fd",
  };
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(x)}" height="${Math.ceil(height + 4)}" font-family="monospace" font-size="12">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#5f6368"/></marker></defs>',
  ];
  for (const [a, b] of g.edges) {
    const p = pos.get(a);
    const q = pos.get(b);
    if (!p || !q) continue;
    out.push(`<line x1="${p.x + p.w}" y1="${p.y + p.h / 2}" x2="${q.x}" y2="${q.y + q.h / 2}" stroke="#5f6368" stroke-width="1" marker-end="url(#arrow)"/>`);
  }
  for (const n of g.nodes) {
    const p = pos.get(n.id)!;
    out.push(
      `<g><rect x="${p.x}" y="${p.y}" width="${p.w}" height="${p.h}" rx="${n.kind === "endpoint" ? 10 : 3}" fill="${FILL[n.kind] ?? "#ffffff"}" stroke="#5f6368"/>`,
    );
    n.label.forEach((l, i) => out.push(`<text x="${p.x + PAD}" y="${p.y + PAD + (i + 1) * LINE - 4}"${i === 0 ? ' font-weight="bold"' : ""}>${esc(l)}</text>`));
    out.push("</g>");
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
