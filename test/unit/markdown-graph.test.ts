// Renderers for people: the plan as a pull-request comment, the desired state as a graph.
import { describe, expect, it } from "vitest";
import { renderPlanMarkdown } from "../../src/cli/render-markdown.js";
import { desiredGraph, renderDot, renderMermaid } from "../../src/cli/render-graph.js";
import type { Plan } from "../../src/core/plan.js";
import type { Change, Resource } from "../../src/core/resource.js";

const r = (id: string, spec: Record<string, string>, extra: Partial<Resource> = {}): Resource => {
  const [kind, name] = id.split(":") as [string, string];
  return { kind, name, id, keys: [], spec, deps: [], owned: true, ...extra };
};

const front = r("network:front", { bridge: "bolt-front", address: "10.1.0.1/24", mtu: "1500" }, { source: { file: "bolt-network.toml", line: 2, col: 1 } });
const web = r("endpoint:web", { host_if: "bv-web", ip: "10.1.0.2/24", mtu: "1500" }, { deps: ["network:front"] });
const webOld = { ...web, spec: { ...web.spec, mtu: "1400" } };
const old = r("network:o|d", { bridge: "bolt-old" });
const wg = r("wgpeer:a", { preshared_key: "c2VjcmV0" }, { sensitive: ["preshared_key"] });

const changes: Change[] = [
  { id: old.id, kind: "network", name: old.name, action: "delete", before: old, changed: [], forcedBy: [] },
  { id: front.id, kind: "network", name: "front", action: "create", after: front, changed: Object.keys(front.spec), forcedBy: [], source: front.source },
  { id: web.id, kind: "endpoint", name: "web", action: "update", before: webOld, after: web, changed: ["mtu"], forcedBy: [] },
  { id: wg.id, kind: "wgpeer", name: "a", action: "create", after: wg, changed: ["preshared_key"], forcedBy: [] },
];
const plan: Plan = {
  target: "prod",
  changes,
  steps: changes.map((change) => ({ change, ops: [] })),
  diagnostics: [],
  desired: [front, web],
  before: [],
  touched: [],
  readBack: new Map(),
};

describe("markdown plan", () => {
  const md = renderPlanMarkdown(plan, [{ severity: "warning", message: "ip_forward is off", source: { file: "bolt-network.toml", line: 9, col: 1 } }]);

  it("has a heading, the summary, and one table row per change with its config line", () => {
    expect(md).toContain("### bolt plan: netns prod");
    expect(md).toContain("**Plan: 2 to add, 1 to change, 0 to replace, 1 to destroy.**");
    expect(md).toContain("| `+ create` | `network.front` |  | `bolt-network.toml:2` |");
    expect(md).toContain("| `~ update` | `endpoint.web` | mtu |  |");
    // A pipe in a name would end the table cell.
    expect(md).toContain("`network.o\\|d`");
  });

  it("puts the field diff in a collapsed diff block, never a sensitive value", () => {
    expect(md).toMatch(/<details><summary>Details<\/summary>\n\n```diff\n/);
    expect(md).toContain('-     mtu = "1400"\n+     mtu = "1500"');
    expect(md).toContain('+     bridge = "bolt-front"');
    expect(md).toContain('-     bridge = "bolt-old"');
    expect(md).toContain("preshared_key = (sensitive)");
    expect(md).not.toContain("c2VjcmV0");
  });

  it("quotes warnings with their position; no changes says so", () => {
    expect(md).toContain("> **Warning:** bolt-network.toml:9:1: ip_forward is off");
    const none = renderPlanMarkdown({ ...plan, changes: [], steps: [] }, [], { state: { host: "web1", exportedAt: "2026-01-01T00:00:00Z" } });
    expect(none).toContain("against the state of `web1` exported 2026-01-01T00:00:00Z");
    expect(none).toContain("**No changes.** Netns prod matches the configuration.");
    expect(none).not.toContain("| action |");
  });
});

describe("graph", () => {
  const g = desiredGraph([front, web, r("sysctl:net.ipv4.ip_forward", { value: "1" }), wg]);

  it("has a node per resource and an edge from each dependency to its user", () => {
    expect(g.nodes.map((n) => n.id)).toEqual(["network:front", "endpoint:web", "sysctl:net.ipv4.ip_forward", "wgpeer:a"]);
    expect(g.edges).toEqual([["network:front", "endpoint:web"]]);
    expect(g.nodes[0]!.label).toEqual(['network "front"', "bridge = bolt-front", "address = 10.1.0.1/24"]);
  });

  it("dot: quoted ids, shapes per kind, the edge", () => {
    const dot = renderDot(g);
    expect(dot.startsWith("digraph bolt {")).toBe(true);
    expect(dot).toContain('"network:front" [shape=box, label="network \\"front\\"\\nbridge = bolt-front\\naddress = 10.1.0.1/24"];');
    expect(dot).toContain('"network:front" -> "endpoint:web";');
    expect(dot.trim().endsWith("}")).toBe(true);
  });

  it("mermaid: bare node ids, escaped quotes, the edge", () => {
    const m = renderMermaid(g);
    expect(m.split("\n")[0]).toBe("graph LR");
    expect(m).toContain('n0["network #quot;front#quot;<br/>bridge = bolt-front<br/>address = 10.1.0.1/24"]');
    expect(m).toContain("n0 --> n1");
    expect(m).not.toContain("c2VjcmV0");
  });
});
