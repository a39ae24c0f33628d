// The seeds' own example files and everything in examples/ must load: schema, semantic
// checks and normalization, with at most warnings (CONFIG.md: "The seeds' own example
// files must validate"). Both folders are globbed, so files added later are covered too.
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadIntent } from "../../src/cli/config.js";
import { ConfigError, formatDiagnostic } from "../../src/core/diagnostics.js";
import { formatCidr4, formatIp4 } from "../../src/core/ipv4.js";
import { kinds } from "./helpers/builders.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CONFIG_RE = /\.(toml|ya?ml)$/i;

function configFiles(dir: string): string[] {
  if (!existsSync(ROOT + dir)) return [];
  return (
    (readdirSync(ROOT + dir, { recursive: true }) as string[])
      // examples/ci/ holds CI workflows that run bolt, not bolt configs
      .filter((f) => CONFIG_RE.test(f) && !f.startsWith("ci/"))
      .map((f) => `${dir}/${f}`)
      .sort()
  );
}

function loadsCleanly(rel: string) {
  let result: ReturnType<typeof loadIntent>;
  try {
    // `bolt validate` semantics: key files named by the seeds live on their hosts, not here.
    result = loadIntent([ROOT + rel], "bolt-t-seed-", { offline: true });
  } catch (e) {
    // Show the diagnostics themselves, not just "threw".
    if (e instanceof ConfigError) expect.fail(e.diagnostics.map(formatDiagnostic).join("\n"));
    throw e;
  }
  for (const w of result.warnings) expect(w.severity, formatDiagnostic(w)).toBe("warning");
  return result;
}

const seeds = configFiles("fixtures/seeds");
const examples = configFiles("examples");

describe("fixtures/seeds", () => {
  it("has the seed files (the glob found something)", () => {
    expect(seeds.length).toBeGreaterThanOrEqual(10);
  });

  it.each(seeds)("%s loads with no errors", (f) => {
    loadsCleanly(f);
  });

  it("a volantd.yaml that relies on the Volant defaults gets volant0, 192.168.127.0/24, .1, pool .100–.254", () => {
    const { intent } = loadsCleanly("fixtures/seeds/volant-networking-ipv6.yaml");
    expect(kinds(intent).networks.map((n) => [n.bridge, formatCidr4(n.subnet), formatIp4(n.gateway), formatIp4(n.pool.start), formatIp4(n.pool.end)])).toEqual([
      ["volant0", "192.168.127.0/24", "192.168.127.1", "192.168.127.100", "192.168.127.254"],
    ]);
  });
});

describe("examples/", () => {
  if (examples.length === 0) {
    it.skip("no example files yet", () => {});
    return;
  }
  it.each(examples)("%s loads with no errors and declares something", (f) => {
    const { intent } = loadsCleanly(f);
    const k = kinds(intent);
    expect(k.networks.length + k.endpoints.length + k.sysctls.length + k.wireguard.length).toBeGreaterThan(0);
  });
});
