// The rt-table kind: names of [[routing.routes]] / [[routing.policies]] tables numbered in
// bolt's own rt_tables.d file — read from iproute2's files (through the runner), a kept name
// keeps its number, a name another file defines is an error at its config position, and each
// write has the undo that puts the file back exactly (or removes it).
import { describe, expect, it } from "vitest";
import { rtTableReconciler as k } from "../../reconcilers/rt-table/index.js";
import { LiveReader } from "../../src/core/live-reader.js";
import type { PlanContext, Resource } from "../../src/core/resource.js";
import { ScriptedRunner, ok } from "../../src/exec/scripted-runner.js";
import { intentOf, writeConfigs } from "./helpers/pipeline.js";

const T = "bolt-t-rtt";
const PATH = `/etc/iproute2/rt_tables.d/bolt-${T}.conf`;
const CONFIG = `[[routing.routes]]
destination = "10.80.0.0/24"
gateway = "10.0.1.2"
table = "games"

[[routing.routes]]
destination = "10.81.0.0/24"
gateway = "10.0.1.2"
table = 21200

[[routing.policies]]
name = "voip"
uidrange = "1000"
gateway = "10.0.1.2"
table = "voice"
`;
const intent = intentOf(writeConfigs({ "bolt-network.toml": CONFIG }));

/** What `grep -r -H -s "" …` prints for these files. */
const grepOut = (files: Record<string, string>) =>
  Object.entries(files)
    .flatMap(([f, text]) =>
      text
        .split("\n")
        .filter((l, i, a) => l || i < a.length - 1)
        .map((l) => `${f}:${l}`),
    )
    .join("\n");

async function read(files: Record<string, string>) {
  const runner = new ScriptedRunner([(c) => (c.argv[0] === "grep" ? ok(grepOut(files)) : undefined)]);
  const r = await k.read(new LiveReader(runner, T), { deep: false, intent, originals: new Map() });
  return { ...r, argv: runner.calls.map((c) => c.argv.join(" ")) };
}

function desired(facts: Record<string, string>) {
  const ctx = {
    target: T,
    intent,
    live: new Map(),
    leases: new Map(),
    netns: new Set(),
    facts: new Map(Object.entries(facts)),
    desired: [],
    prepared: new Map(),
  };
  return k.desired(ctx as unknown as PlanContext);
}

const ctxOf = (live: Resource[] = []) => ({ target: T, live: new Map(live.map((r) => [r.id, r])) }) as unknown as PlanContext;

describe("rt-table", () => {
  it("reads every iproute2 names file in one grep on the host; bolt's own file is the owned resource", async () => {
    const r = await read({ "/etc/iproute2/rt_tables": "255\tlocal\n254\tmain\n", [PATH]: "# bolt\n21201\tgames\n" });
    expect(r.argv).toEqual(["grep -r -H -s  /etc/iproute2/rt_tables /etc/iproute2/rt_tables.d /usr/share/iproute2/rt_tables /usr/share/iproute2/rt_tables.d"]);
    expect(r.resources).toMatchObject([{ id: `rt-table:${PATH}`, owned: true, spec: { tables: "21201 games" }, data: { text: "# bolt\n21201\tgames\n" } }]);
    expect(JSON.parse(r.facts!["rt-table.entries"]!)).toHaveLength(3);
  });

  it("a kept name keeps its number; a new one takes the lowest number nobody uses (not the config's own 21200)", async () => {
    const r = await read({ [PATH]: "# bolt\n21202\tgames\n" });
    const d = desired(r.facts!);
    expect(d.diagnostics).toEqual([]);
    expect(d.resources.map((x) => x.spec.tables)).toEqual(["21201 voice, 21202 games"]);
  });

  it("a name another rt_tables file defines is an error at the config's table value", async () => {
    const r = await read({ "/etc/iproute2/rt_tables.d/vpn.conf": "300 voice\n" });
    const d = desired(r.facts!);
    expect(d.diagnostics).toMatchObject([
      {
        severity: "error",
        message: 'table "voice" is already named in /etc/iproute2/rt_tables.d/vpn.conf (table 300); bolt will not redefine it',
        source: { line: CONFIG.split("\n").indexOf('table = "voice"') + 1, col: 9 },
      },
    ]);
  });

  it("create writes the file (undo: remove it); update's undo puts the old bytes back; delete removes it (undo: the old bytes)", async () => {
    const after = desired({}).resources[0]!;
    const [create] = k.render({ id: after.id, kind: "rt-table", name: after.name, action: "create", after, changed: [], forcedBy: [] }, ctxOf());
    expect(create).toMatchObject({ args: ["tee", PATH], phase: "file", undo: [{ args: ["rm", "-f", PATH] }] });
    expect(create!.stdin).toMatch(/^# bolt: .*\n21201\tgames\n21202\tvoice\n$/);
    const before = (await read({ [PATH]: "# edited by hand\n21202\tgames\n" })).resources[0]!;
    const [update] = k.render(
      { id: after.id, kind: "rt-table", name: after.name, action: "update", before, after, changed: ["tables"], forcedBy: [] },
      ctxOf([before]),
    );
    expect(update!.undo).toEqual([{ tool: "exec", ns: null, args: ["tee", PATH], stdin: "# edited by hand\n21202\tgames\n" }]);
    const [del] = k.render({ id: after.id, kind: "rt-table", name: after.name, action: "delete", before, changed: [], forcedBy: [] }, ctxOf([before]));
    expect(del).toMatchObject({ args: ["rm", "-f", PATH], undo: [{ args: ["tee", PATH], stdin: "# edited by hand\n21202\tgames\n" }] });
  });
});
