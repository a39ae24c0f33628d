// A desired object may not take a kernel name held by something bolt does not own; the error
// points at the config line that names it (an endpoint's host interface comes from its name).
import { describe, expect, it } from "vitest";
import { ScriptedRunner } from "../../src/exec/scripted-runner.js";
import type { ScriptedCall } from "../../src/exec/scripted-runner.js";
import { intentOf, planIntent, writeConfigs } from "./helpers/pipeline.js";

const LINKS = JSON.stringify([
  { ifindex: 1, ifname: "lo", flags: ["LOOPBACK", "UP"], mtu: 65536, linkinfo: {} },
  { ifindex: 7, ifname: "bv-web", flags: ["BROADCAST"], mtu: 1500, linkinfo: { info_kind: "dummy" } },
]);

const kernel = () =>
  new ScriptedRunner([
    (c: ScriptedCall) => {
      const a = c.argv.join(" ");
      if (a.endsWith("-j -d link show") || a.endsWith("-j link show")) return { stdout: LINKS, stderr: "", code: 0 };
      if (a.includes("nft -c")) return { stdout: "", stderr: "", code: 0 };
      if (/ip (-n \S+ )?-j /.test(a)) return { stdout: a.includes("netns list") ? '[{"name":"bolt-t-col"}]' : "[]", stderr: "", code: 0 };
      return { stdout: "", stderr: "No such file or directory", code: 1 };
    },
  ]);

describe("collisions with foreign kernel objects", () => {
  it("an endpoint whose host interface a foreign link holds: the error is at the endpoint's name", async () => {
    const [file] = writeConfigs({
      "bolt-network.toml": '[networks.front]\nsubnet = "10.96.0.0/24"\ninternet = false\n\n[[endpoints]]\nname = "web"\nnetwork = "front"\n',
    });
    const plan = await planIntent(intentOf([file!]), kernel(), { target: "bolt-t-col" });
    const errors = plan.diagnostics.filter((d) => d.severity === "error");
    expect(errors.map((d) => d.message)).toEqual(['endpoint "web": interface bv-web already exists (dummy, not created by bolt); bolt will not take it over']);
    expect(errors[0]!.source).toMatchObject({ file, line: 6, col: 8 });
  });
});
