// Which files the daemon watches besides the config: what the config refers to.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileWatch } from "../../src/watch/file-watch.js";
import { referencedFiles } from "../../src/watch/referenced-files.js";
import type { Intent } from "../../src/core/intent.js";
import { emptyIntent } from "../../src/core/intent.js";

describe("referencedFiles", () => {
  it("finds blocklists relative to the config that names them, and key files wherever they sit", () => {
    const at = (file: string) => ({ file, line: 1, col: 1 });
    const intent = {
      networks: [],
      endpoints: [],
      sysctls: [],
      files: ["/etc/bolt/main.toml", "/srv/extra/fw.toml"],
      nft: { ddos: { blocklists: [{ name: "a", path: "lists/bad.txt", cidrs: [], source: at("/srv/extra/fw.toml") }], source: at("/srv/extra/fw.toml") } },
      wireguard: [
        {
          ifname: "wg0",
          privateKeyFile: "/etc/bolt/keys/wg0.key",
          peers: [{ presharedKeyFile: "psk/a.psk", source: at("/etc/bolt/main.toml") }],
          source: at("/etc/bolt/main.toml"),
        },
      ],
    } as unknown as Intent;
    expect(referencedFiles(intent)).toEqual(["/etc/bolt/keys/wg0.key", "/etc/bolt/psk/a.psk", "/srv/extra/lists/bad.txt"]);
  });

  it("a config with no references watches nothing more", () => {
    expect(referencedFiles(emptyIntent(["/x/a.toml"]))).toEqual([]);
  });
});

describe("FileWatch on a config directory (-f DIR)", () => {
  it("a config file added to, changed in or removed from the directory is a change; hidden temp files and other names are not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bolt-watch-dir-"));
    const seen: string[] = [];
    const w = new FileWatch((p) => seen.push(basename(p)));
    try {
      w.set([dir]);
      await w.ready();
      writeFileSync(join(dir, ".games.toml.tmp"), "x");
      writeFileSync(join(dir, "notes.txt"), "x");
      writeFileSync(join(dir, "games.toml"), "[networks.games]\n");
      const deadline = Date.now() + 5000;
      while (!seen.includes("games.toml") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(seen).toContain("games.toml");
      expect(seen.filter((f) => f !== "games.toml")).toEqual([]);
      expect(w.files()).toEqual([dir]);
    } finally {
      await w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("FileWatch after close()", () => {
  it("a set() from the pass still in flight when the daemon stops watches nothing (a watcher would keep the stopped daemon alive)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bolt-watch-closed-"));
    const w = new FileWatch(() => {});
    try {
      w.set([join(dir, "a.toml")]);
      await w.ready();
      expect(w.active).toBe(true);
      await w.close();
      w.set([join(dir, "a.toml"), join(dir, "key")]);
      expect(w.active).toBe(false);
    } finally {
      await w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
