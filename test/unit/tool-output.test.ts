// A tool that exits 0 but prints something that is not JSON (a truncated dump, a wrapper's
// banner) is a one-line error naming the command, never a SyntaxError stack trace.
import { describe, expect, it } from "vitest";
import { BoltError } from "../../src/core/diagnostics.js";
import { LiveReader } from "../../src/core/live-reader.js";
import { ScriptedRunner } from "../../src/exec/scripted-runner.js";

describe("malformed tool output", () => {
  it("ip -j with truncated JSON", async () => {
    const io = new LiveReader(new ScriptedRunner([() => ({ stdout: '[{"ifindex":1,"ifname":"lo"', stderr: "", code: 0 })]), "bolt-t-x");
    const err = await io.ipJson(["-d", "link", "show"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BoltError);
    expect((err as Error).message).toMatch(
      /^`ip -n bolt-t-x -j -d link show` exited 0 but printed no valid JSON \(.*; 27 bytes\): is the tool on PATH the real one\?$/,
    );
  });

  it("an ip -j -batch read with a bad line", async () => {
    const io = new LiveReader(new ScriptedRunner([() => ({ stdout: "[]\nnot json\n", stderr: "", code: 0 })]), "bolt-t-x");
    await expect(io.ipJsonBatch(["addr show", "route show default"], "bolt-t-x-a")).rejects.toThrow(
      /`ip -n bolt-t-x-a -j -batch -` exited 0 but printed no valid JSON/,
    );
  });
});
