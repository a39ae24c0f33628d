// Hardening: a namespace target must not become a way to change the whole host. kernel.*,
// vm.*, fs.* keys are host-wide (not per network namespace): with --netns they are a config
// error at the key's position; a key the kernel does not have is an error at its position
// too (it used to crash the planner with a TypeError).
import { describe, expect, it } from "vitest";
import { ScriptedRunner } from "../../src/exec/scripted-runner.js";
import type { ScriptedCall } from "../../src/exec/scripted-runner.js";
import { intentOf, planIntent, writeConfigs } from "./helpers/pipeline.js";

/** An empty namespace whose sysctl knows only the given keys. */
function kernel(values: Record<string, string>) {
  return new ScriptedRunner([
    (c: ScriptedCall) => {
      const a = c.argv.join(" ");
      if (/ip (-n \S+ )?-j /.test(a)) return { stdout: a.includes("netns list") ? '[{"name":"bolt-t-sys"}]' : "[]", stderr: "", code: 0 };
      if (a.includes("sysctl")) {
        const keys = c.argv.slice(c.argv.indexOf("sysctl") + 1);
        const known = keys.filter((k) => k in values);
        return {
          stdout: known.map((k) => `${k} = ${values[k]}`).join("\n") + "\n",
          stderr: keys
            .filter((k) => !(k in values))
            .map((k) => `sysctl: cannot stat /proc/sys/${k.replaceAll(".", "/")}: No such file or directory`)
            .join("\n"),
          code: known.length === keys.length ? 0 : 255,
        };
      }
      return { stdout: "", stderr: "No such file or directory", code: 1 };
    },
  ]);
}

describe("sysctl keys and the target", () => {
  it("refuses a host-wide key through a namespace target, at the key's position", async () => {
    const [file] = writeConfigs({ "bolt-network.toml": '[sysctl]\n"net.ipv4.ip_forward" = 1\n"kernel.pid_max" = 4194304\n' });
    const plan = await planIntent(intentOf([file!]), kernel({ "net.ipv4.ip_forward": "0", "kernel.pid_max": "32768" }), { target: "bolt-t-sys" });
    const errors = plan.diagnostics.filter((d) => d.severity === "error");
    expect(errors.map((d) => d.message)).toEqual([
      'sysctl "kernel.pid_max" is not per network namespace: written through netns bolt-t-sys it would change the whole host',
    ]);
    expect(errors[0]!.source).toMatchObject({ file, line: 3, col: 1 });
  });

  it("allows it on the host itself", async () => {
    const [file] = writeConfigs({ "bolt-network.toml": '[sysctl]\n"kernel.pid_max" = 4194304\n' });
    const plan = await planIntent(intentOf([file!]), kernel({ "kernel.pid_max": "32768" }), { target: null });
    expect(plan.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(plan.changes.map((c) => `${c.action} ${c.id}`)).toEqual(["create sysctl:kernel.pid_max"]);
  });

  it("a key this kernel does not have is an error at its position, not a crash", async () => {
    const [file] = writeConfigs({ "bolt-network.toml": '[sysctl]\n"net.ipv4.ip_forward" = 1\n"net.ipv4.no_such_key" = 1\n' });
    const plan = await planIntent(intentOf([file!]), kernel({ "net.ipv4.ip_forward": "0" }), { target: "bolt-t-sys" });
    const errors = plan.diagnostics.filter((d) => d.severity === "error");
    expect(errors.map((d) => d.message)).toEqual(['sysctl "net.ipv4.no_such_key" does not exist in this kernel (or namespace)']);
    expect(errors[0]!.source).toMatchObject({ file, line: 3, col: 1 });
  });

  it("a value of the wrong shape is an error at its key (a word for a number, one number for a range)", async () => {
    const [file] = writeConfigs({
      "bolt-network.toml": '[sysctl]\n"net.ipv4.ip_forward" = "yes"\n"net.ipv4.ip_local_port_range" = 1024\n"net.ipv4.ip_default_ttl" = 64\n',
    });
    const plan = await planIntent(
      intentOf([file!]),
      kernel({ "net.ipv4.ip_forward": "0", "net.ipv4.ip_local_port_range": "32768\t60999", "net.ipv4.ip_default_ttl": "64" }),
      { target: "bolt-t-sys" },
    );
    const errors = plan.diagnostics.filter((d) => d.severity === "error");
    expect(errors.map((d) => d.message)).toEqual([
      'sysctl "net.ipv4.ip_forward" = "yes": the kernel keeps 1 integer(s) here (now "0")',
      'sysctl "net.ipv4.ip_local_port_range" = "1024": the kernel keeps 2 integer(s) here (now "32768 60999")',
    ]);
    expect(errors.map((d) => d.source?.line)).toEqual([2, 3]);
  });
});
