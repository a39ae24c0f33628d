// [[routing.policies]] selectors ip rule matches itself (iif, oif, uidrange): validated at
// file:line:col, written on the rule (no nft mark unless protocol, ports or addresses need one).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configFiles } from "./helpers/config-at.js";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import { fragment } from "../../src/core/intent.js";
import { ruleReconciler } from "../../reconcilers/rule/index.js";
import { POLICIES } from "../../reconcilers/rule/intent.js";

const { dir, load, errorAt } = configFiles("p");
let n = 0;
const policy = (body: string) => `[[routing.policies]]\nname = "p${n++}"\ngateway = "10.0.2.2"\n${body}\n`;

function ruleLines(text: string): string[] {
  const { intent } = load(text);
  const ctx = { target: "ns", intent, live: new Map(), leases: new Map(), netns: new Set(), facts: new Map(), desired: [], prepared: new Map() };
  const { resources } = ruleReconciler.desired(ctx as never);
  return resources.flatMap((r) =>
    ruleReconciler
      .render({ action: "create", id: r.id, kind: r.kind, name: r.name, after: r, changed: [] } as never, ctx as never)
      .map((o) => o.args.join(" ")),
  );
}

describe("policy selector errors", () => {
  it("an interface name over 15 characters, an unordered or oversized uid range, a reserved table name", () => {
    errorAt(policy('iif = "averyveryverylongname"'), '"averyveryverylongname"', /iif: must NOT have more than 15 characters/);
    errorAt(policy('oif = "eth 0"'), '"eth 0"', /oif|pattern/);
    errorAt(policy('uidrange = "2000-1000"'), '"2000-1000"', /uidrange "2000-1000": the range is not ordered \(2000 > 1000\)/);
    errorAt(policy('uidrange = "4294967295"'), '"4294967295"', /a uid is at most 4294967294/);
    errorAt(policy('table = "local"'), '"local"', /table "local" is one of the kernel's own tables/);
  });
});

describe("bolt's rule-priority band", () => {
  it("a thousandth policy would leave the band (a thousand priorities per class): an error at it; kernel and exit tables are refused", () => {
    const many = Array.from({ length: 1000 }, (_, i) => `[[routing.policies]]\nname = "q${i}"\nuidrange = "${i}"\ngateway = "10.0.2.2"\n`).join("\n");
    errorAt(many, '[[routing.policies]]\nname = "q999"', /policy "q999": at most 999 policies/);
    errorAt(policy("table = 254"), "254", /table 254 is a kernel table/);
    errorAt(policy("table = 20100"), "20100", /table 20100 is the exit node's/);
  });
});

describe("policy selectors on the rule", () => {
  it("iif, oif and uidrange alone: an ip rule with them and no nft mark", () => {
    expect(ruleLines(policy('iif = "veth0"\nuidrange = "1000"'))).toEqual(["rule add priority 23000 iif veth0 uidrange 1000-1000 table 20200 protocol 176"]);
    const { intent } = load(policy('oif = "r2"\nuidrange = "1000-1999"'));
    expect(fragment(intent, POLICIES)[0]).toMatchObject({ oif: "r2", uidrange: [1000, 1999] });
    expect(fragment(intent, POLICIES)[0]!.mark).toBeUndefined();
  });

  it("with ports: the mark and the rule's own selectors together (both must match)", () => {
    expect(ruleLines(policy('protocol = "udp"\ndest_ports = "5000"\niif = "lo"'))).toEqual([
      "rule add priority 23000 fwmark 0xc000001/0xf000fff iif lo table 20200 protocol 176",
    ]);
  });

  it("a named table is written by name (ip resolves it through bolt's rt_tables.d file)", () => {
    expect(ruleLines(policy('uidrange = "0"\ntable = "games"'))).toEqual(["rule add priority 23000 uidrange 0-0 table games protocol 176"]);
  });
});
