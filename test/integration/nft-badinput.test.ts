// Bad nftables input through the real CLI: every mistake is a file:line:col error, and
// nothing is applied — the target (links, routes, bolt's table and any other nft state)
// reads back exactly as before, with a previously applied bolt table intact.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SKIP_REASON, posOf, requireBuild, snapshot } from "./harness.js";
import type { Snapshot } from "./harness.js";
import { Topology, applyConverged, boltTable } from "./nft-topology.js";

const GOOD = `
[networks.front]
subnet = "10.71.0.0/24"

[[endpoints]]
name = "web"
network = "front"

[[segments]]
name = "game-seg"
members = ["front"]
network_policies = ["allow tcp:27015 from any"]
`;

const rule = (body: string, name = "r1") => `\n[[firewall.rules]]\nname = "${name}"\naction = "deny"\n${body}\n`;

/** config text → the text the error must point at (first occurrence) and what it says */
const BAD: [string, string, string, RegExp][] = [
  ["unknown protocol", rule('protocol = "sctp"'), '"sctp"', /protocol/],
  ["port 0", rule('protocol = "tcp"\ndest_ports = "0"'), '"0"', /dest_ports "0" is not a port 1-65535/],
  ["port over 65535", rule('protocol = "tcp"\ndest_ports = "65536"'), '"65536"', /"65536" is not a port 1-65535/],
  ["reversed range", rule('protocol = "udp"\nsource_ports = "2000-1000"'), '"2000-1000"', /N <= M/],
  ["unknown network", rule('source = "frnot"'), '"frnot"', /"frnot" is not a CIDR, network, segment or endpoint/],
  ["unknown segment", rule('destination = "game-sag"'), '"game-sag"', /did you mean "game-seg"/],
  ["policy that does not parse", GOOD.replace("allow tcp:27015 from any", "allow tcp:27015 frm any"), "frm any", /expected "from" or "to", found "frm"/],
  ["injection in a rule name", rule('protocol = "tcp"', 'x\\" drop; #'), '"x\\"', /is not valid: A logical name/],
  ["injection with braces", rule('protocol = "tcp"', "r } table ip x { "), '"r }', /is not valid: A logical name/],
  ["newline in a segment name", '\n[[segments]]\nname = "s\\nflush ruleset"\n', '"s\\n', /is not valid: A logical name/],
];

describe.skipIf(!!SKIP_REASON)("nft: bad input is refused with file:line:col, nothing applied", () => {
  const topo = new Topology();
  const sb = topo.sb;
  let before: Snapshot;
  let table: string;

  beforeAll(async () => {
    requireBuild();
    await topo.build();
    await applyConverged(sb, [sb.write("good.toml", GOOD)]);
    before = await snapshot(topo.host);
    table = (await boltTable(topo.host, true))!;
    expect(table).toContain("tcp dport 27015");
  });
  afterAll(() => topo.cleanup());

  for (const [i, [title, extra, at, message]] of BAD.entries()) {
    it(title, async () => {
      const text = extra.startsWith("\n[networks") || extra.includes("[networks.front]") ? extra : GOOD + extra;
      const file = sb.write(`bad${i}.toml`, text);
      const { line, col } = posOf(text, at);
      for (const cmd of ["plan", "apply"]) {
        const r = await sb.bolt([cmd, "-f", file]);
        expect(r.code, r.stdout).toBe(1);
        const hit = r.stderr.split("\n").find((l) => message.test(l));
        expect(hit, r.stderr).toBeDefined();
        expect(hit).toContain(`${file}:${line}:${col}: error:`);
      }
      expect(await snapshot(topo.host)).toEqual(before);
      expect(await boltTable(topo.host, true)).toBe(table);
    });
  }

  it("the good config still matches: nothing drifted", async () => {
    expect((await sb.planExit(sb.write("good.toml", GOOD))).code).toBe(0);
  });
});
