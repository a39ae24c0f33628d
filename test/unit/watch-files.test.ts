// Which files the daemon watches besides the config: what the config refers to.
import { describe, expect, it } from "vitest";
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
