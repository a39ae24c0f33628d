// Hardening, the state store under faults: a state dir that is a regular file, a damaged
// SQLite header, a read-only state dir, a key written into a missing directory — each a
// one-line error that says what to do (never `error: internal:` with a stack trace), the
// kernel untouched; plan still works from a read-only store.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, SKIP_REASON, bolt, must, requireBuild, snapshot } from "./harness.js";
import type { Snapshot } from "./harness.js";

const CONFIG = `[networks.front]\nsubnet = "10.94.0.0/24"\n\n[[endpoints]]\nname = "web"\nnetwork = "front"\n`;

describe.skipIf(!!SKIP_REASON)("the state store under faults", () => {
  const sb = new Sandbox();
  let file: string;
  let applied: Snapshot;
  const withState = (args: string[], stateDir: string) => bolt([...args, "--netns", sb.target, "--netns-prefix", sb.prefix, "--state-dir", stateDir]);
  const oneLine = (stderr: string) => {
    expect(stderr).not.toContain("internal");
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  };

  beforeAll(async () => {
    requireBuild();
    await sb.addNetns();
    file = sb.write("bolt-network.toml", CONFIG);
    const r = await sb.bolt(["apply", "-f", file]);
    expect(r.code, r.stderr).toBe(0);
    applied = await snapshot(sb.target);
  });
  afterAll(async () => {
    await must(["sh", "-c", `umount ${join(sb.dir, "ro-state")} 2>/dev/null || true`]);
    await sb.cleanup();
  });

  it("a state dir that is a regular file", async () => {
    const f = join(sb.dir, "not-a-dir");
    writeFileSync(f, "x");
    const r = await withState(["apply", "-f", file], f);
    expect(r.code).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).toContain(`the state dir ${f} is not a directory`);
    expect(await snapshot(sb.target)).toEqual(applied);
  });

  it("a damaged store: plan and apply say to move it away; after that bolt goes on from the kernel", async () => {
    const dir = join(sb.dir, "damaged");
    mkdirSync(dir);
    writeFileSync(join(dir, "bolt.db"), Buffer.alloc(4096, 0x5a));
    for (const cmd of ["plan", "apply"]) {
      const r = await withState([cmd, "-f", file], dir);
      expect(r.code, cmd).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toContain(`the state store ${join(dir, "bolt.db")} is damaged`);
      expect(r.stderr).toContain(`mv ${join(dir, "bolt.db")}`);
    }
    expect(await snapshot(sb.target)).toEqual(applied);
    await must(["mv", join(dir, "bolt.db"), join(dir, "bolt.db.broken")]);
    // What bolt owns is recognised from the kernel (aliases), and the sysctl's value from before
    // bolt from the copy in /run/bolt: nothing to do.
    const p = await withState(["plan", "-f", file, "--detailed-exitcode"], dir);
    expect(p.code, p.stdout + p.stderr).toBe(0);
  });

  it("a read-only state dir: plan reads it, apply refuses before writing anything", async () => {
    const dir = join(sb.dir, "ro-state");
    mkdirSync(dir);
    for (const f of ["bolt.db", "bolt.db-wal"]) {
      try {
        copyFileSync(join(sb.stateDir, f), join(dir, f));
      } catch {
        /* no WAL file */
      }
    }
    await must(["mount", "--bind", dir, dir]);
    await must(["mount", "-o", "remount,bind,ro", dir]);
    const p = await withState(["plan", "-f", file, "--detailed-exitcode"], dir);
    expect(p.code, p.stdout + p.stderr).toBe(0);
    sb.write("bolt-network.toml", CONFIG.replace("10.94.0.0/24", "10.95.0.0/24"));
    const r = await withState(["apply", "-f", file], dir);
    expect(r.code).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(/cannot be written|read-only/);
    expect(await snapshot(sb.target)).toEqual(applied);
    sb.write("bolt-network.toml", CONFIG);
  });

  it("a corrupted journal payload: one line naming the way out, and --discard-journal takes it", async () => {
    const dir = join(sb.dir, "bad-journal");
    mkdirSync(dir);
    copyFileSync(join(sb.stateDir, "bolt.db"), join(dir, "bolt.db"));
    const db = new Database(join(dir, "bolt.db"));
    db.prepare("INSERT OR REPLACE INTO journal (target, pid, started_at, payload) VALUES (?, ?, ?, ?)").run(
      sb.target,
      4242,
      "2026-12-01T00:00:00Z",
      '{"version":1,"started":[{"args"',
    );
    db.close();
    const r = await withState(["apply", "-f", file], dir);
    expect(r.code).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).toContain("the journal of the interrupted apply (pid 4242, 2026-12-01T00:00:00Z) is unreadable");
    expect(r.stderr).toContain("bolt rollback --discard-journal");
    expect(await snapshot(sb.target)).toEqual(applied);
    const d = await withState(["rollback", "--discard-journal"], dir);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain("Dropped the journal of the apply started 2026-12-01T00:00:00Z (pid 4242)");
    const p = await withState(["plan", "-f", file, "--detailed-exitcode"], dir);
    expect(p.code, p.stdout + p.stderr).toBe(0);
  });

  it("the state dir deleted: destroy still restores the sysctl's value from before bolt", async () => {
    const dir = join(sb.dir, "short-lived");
    const other = sb.write("other.toml", CONFIG);
    // A fresh state dir on the same target has nothing to do: it knows the original from /run/bolt.
    const a = await withState(["apply", "-f", other], dir);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).not.toContain("sysctl");
    await must(["rm", "-rf", dir]);
    const d = await withState(["destroy"], dir);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain('value = "1" -> "0" (restored)');
    expect((await must(["ip", "netns", "exec", sb.target, "sysctl", "-n", "net.ipv4.ip_forward"])).trim()).toBe("0");
  });

  it("a key written into a missing directory", async () => {
    const r = await bolt(["keygen", join(sb.dir, "no", "such", "dir", "gw0.key")]);
    expect(r.code).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(/^error: cannot open .*gw0\.key: no such file or directory/);
  });
});
