// [[routing.routes]] validation at file:line:col and the ip lines a static route becomes.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configFiles } from "./helpers/config-at.js";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError } from "../../src/core/diagnostics.js";
import { routeReconciler } from "../../reconcilers/route/index.js";

const { dir, load, errorAt } = configFiles("r");
const route = (body: string) => `[[routing.routes]]\n${body}\n`;

describe("static route errors", () => {
  it("host bits, family mismatch, nexthops with a gateway, a blackhole with a next hop, nothing to route by, duplicates", () => {
    errorAt(route('destination = "10.80.0.1/24"\ngateway = "10.0.0.1"'), '"10.80.0.1/24"', /host bits set/);
    errorAt(route('destination = "fd80::/64"\ngateway = "10.0.0.1"'), '"10.0.0.1"', /gateway "10\.0\.0\.1" is not an IPv6 address \(the destination is IPv6\)/);
    errorAt(
      route('destination = "10.80.0.0/24"\ngateway = "10.0.0.1"\nnexthops = [{ gateway = "10.0.0.2" }, { gateway = "10.0.0.3" }]'),
      "[{",
      /nexthops or gateway\/device, not both/,
    );
    errorAt(route('destination = "10.80.0.0/24"\ngateway = "10.0.0.1"\ntype = "blackhole"'), '"blackhole"', /a blackhole route has no next hop/);
    errorAt(route('destination = "10.80.0.0/24"'), "[[routing.routes]]", /needs a gateway, a device or nexthops/);
    const twice = route('destination = "10.80.0.0/24"\ngateway = "10.0.0.1"') + route('destination = "10.80.0.0/24"\ngateway = "10.0.0.2"');
    errorAt(twice, '[[routing.routes]]\ndestination = "10.80.0.0/24"\ngateway = "10.0.0.2"', /is defined twice/);
  });
});

describe("static route ops", () => {
  it("ECMP with weights, metric and mtu, blackhole; IPv6 default is ::/0", () => {
    const { intent } = load(
      route(
        'destination = "10.80.0.0/24"\nnexthops = [{ gateway = "10.0.1.2", device = "r1" }, { gateway = "10.0.2.2", weight = 3 }]\nmetric = 20\nmtu = 1400',
      ) +
        route('destination = "10.82.0.0/24"\ntype = "blackhole"') +
        route('destination = "::/0"\ngateway = "fd01::2"'),
    );
    const { resources } = routeReconciler.desired({
      target: "ns",
      intent,
      live: new Map(),
      leases: new Map(),
      netns: new Set(),
      facts: new Map(),
      desired: [],
      prepared: new Map(),
    });
    const ops = resources.flatMap((r) =>
      routeReconciler.render({ action: "create", id: r.id, kind: r.kind, name: r.name, after: r, changed: [] } as never, { target: "ns" } as never),
    );
    expect(ops.map((o) => o.args.join(" "))).toEqual([
      "route replace 10.80.0.0/24 table main proto 176 metric 20 mtu 1400 nexthop via 10.0.1.2 dev r1 weight 1 nexthop via 10.0.2.2 weight 3",
      "route replace blackhole 10.82.0.0/24 table main proto 176",
      "route replace ::/0 via fd01::2 table main proto 176",
    ]);
    expect(ops.map((o) => o.undo[0]!.args.join(" "))).toEqual([
      "route del 10.80.0.0/24 table main proto 176 metric 20",
      "route del blackhole 10.82.0.0/24 table main proto 176",
      "route del ::/0 table main proto 176",
    ]);
  });
});
