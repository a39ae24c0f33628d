// Every tool process has a time limit and obeys an AbortSignal: a hung tool fails its batch
// with a message naming the tool, the namespace and the time waited, instead of hanging the
// apply (and the target lock) forever.
import { describe, expect, it } from "vitest";
import { ProcessRunner } from "../../src/exec/process-runner.js";
import { runBatch, timeoutMs, toolName, toolOf } from "../../src/exec/tools.js";
import type { CommandRunner, RunOptions } from "../../src/exec/runner.js";

describe("ProcessRunner limits", () => {
  it("kills a process that runs past its limit and says so", async () => {
    const t0 = Date.now();
    const r = await new ProcessRunner().run(["sleep", "30"], undefined, { timeoutMs: 200 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.timedOut).toBe(true);
    expect(r.code).toBe(124);
    expect(r.stderr).toContain("sleep timed out after 0.2 s");
  });

  it("does not wait for children of a killed tool that hold its pipes", async () => {
    const t0 = Date.now();
    const r = await new ProcessRunner().run(["sh", "-c", "sleep 30 & wait"], undefined, { timeoutMs: 200 });
    expect(r.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("kills on abort", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await new ProcessRunner().run(["sleep", "30"], undefined, { timeoutMs: 60_000, signal: ac.signal });
    expect(r.aborted).toBe(true);
    expect(r.code).toBe(130);
  });

  it("a process that finishes in time is untouched", async () => {
    const r = await new ProcessRunner().run(["sh", "-c", "echo hi; echo err >&2; exit 3"], undefined, { timeoutMs: 5000 });
    expect(r).toEqual({ stdout: "hi\n", stderr: "err\n", code: 3 });
  });
});

describe("tool registry", () => {
  it("passes each tool's limit to the runner and names tool and namespace on a timeout", async () => {
    const seen: (RunOptions | undefined)[] = [];
    const hung: CommandRunner = {
      run: async (_argv, _stdin, opts) => {
        seen.push(opts);
        return { stdout: "", stderr: "", code: 124, timedOut: true };
      },
    };
    const r = await runBatch(hung, { tool: "wg", ns: "bolt-t-x", ops: [{ tool: "wg", ns: "bolt-t-x", args: ["gw0", "peer", "K=", "remove"] }] });
    expect(seen[0]?.timeoutMs).toBe(timeoutMs("wg"));
    expect(r.error?.message).toContain("wg set in netns bolt-t-x did not finish within 15 s and was killed");
    const ip = await runBatch(hung, { tool: "ip", ns: null, ops: [{ tool: "ip", ns: null, args: ["link", "add", "x", "type", "bridge"] }] });
    expect(ip.error?.message).toContain("ip in the host namespace did not finish within");
    // Unknown failure point: every op may have happened (undo is forced and idempotent).
    expect(ip.done).toBe(1);
  });

  it("BOLT_TOOL_TIMEOUT replaces every limit", () => {
    const old = process.env.BOLT_TOOL_TIMEOUT;
    process.env.BOLT_TOOL_TIMEOUT = "2";
    try {
      expect(timeoutMs("ip", 5000)).toBe(2000);
      expect(timeoutMs("nft")).toBe(2000);
    } finally {
      if (old === undefined) delete process.env.BOLT_TOOL_TIMEOUT;
      else process.env.BOLT_TOOL_TIMEOUT = old;
    }
  });

  it("knows how each tool batches and describes itself", () => {
    expect(toolName(["ip", "netns", "exec", "ns1", "nft", "-f", "-"])).toBe("nft");
    expect(
      toolOf("ip").processes({
        tool: "ip",
        ns: null,
        ops: [
          { tool: "ip", ns: null, args: ["a"] },
          { tool: "ip", ns: null, args: ["b"] },
        ],
      }),
    ).toBe(1);
    expect(
      toolOf("wg").processes({
        tool: "wg",
        ns: null,
        ops: [
          { tool: "wg", ns: null, args: ["gw0"] },
          { tool: "wg", ns: null, args: ["gw0"] },
          { tool: "wg", ns: null, args: ["gw1"] },
        ],
      }),
    ).toBe(2);
    expect(toolOf("wg").prefix).toBe("wg set ");
    expect(() => toolOf("nope")).toThrow(/no tool "nope"/);
  });
});
