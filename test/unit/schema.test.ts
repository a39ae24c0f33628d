// JSON Schemas for the three input files (schema/*.schema.json): they compile under ajv
// strict mode, every seed fixture validates, typical mistakes are rejected, and the
// schemas keep their own rules (closed objects, descriptions, secrets, "accepted, not
// enforced" annotations on exactly the keys this version does not implement).
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import Ajv2020Module from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

// Both packages are CommonJS with `exports.default`: at run time the default import is the
// class/function itself (which also carries `.default`); TypeScript under NodeNext types it
// as the module namespace. Taking `.default ?? it` is right for both.
const Ajv2020 = ((Ajv2020Module as Json).default ?? Ajv2020Module) as typeof Ajv2020Module.default;
const addFormats = ((addFormatsModule as Json).default ?? addFormatsModule) as typeof addFormatsModule.default;
type Kind = "bolt-network" | "ghostwire" | "volantd";

const root = fileURLToPath(new URL("../../", import.meta.url));
const KINDS: Kind[] = ["bolt-network", "ghostwire", "volantd"];
const BASE = "https://bolt.dev/schema/";

const schemas = Object.fromEntries(KINDS.map((k) => [k, JSON.parse(readFileSync(`${root}schema/${k}.schema.json`, "utf8"))])) as Record<Kind, Json>;

function makeAjv() {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  ajv.addKeyword({ keyword: "x-not-enforced", schemaType: "string" });
  ajv.addKeyword({ keyword: "x-bolt-kind", schemaType: "string" });
  for (const k of KINDS) ajv.addSchema(schemas[k]);
  return ajv;
}

const ajv = makeAjv();
const validators = Object.fromEntries(KINDS.map((k) => [k, ajv.getSchema(`${BASE}${k}.schema.json`) as ValidateFunction])) as Record<Kind, ValidateFunction>;

function validate(kind: Kind, doc: unknown): ErrorObject[] {
  const v = validators[kind];
  return v(doc) ? [] : [...(v.errors ?? [])];
}

const fmt = (errs: ErrorObject[]) => errs.map((e) => `${e.instancePath || "/"} ${e.keyword} ${e.message} ${JSON.stringify(e.params)}`).join("\n");

// --- fixtures -------------------------------------------------------------------------

const fixtureDir = `${root}fixtures/seeds/`;
const fixtureFiles = readdirSync(fixtureDir)
  .filter((f) => /\.(toml|ya?ml)$/.test(f))
  .sort();

function load(file: string): Json {
  const text = readFileSync(fixtureDir + file, "utf8");
  // JSON round trip: plain objects only (no TOML symbols, no YAML nodes).
  return JSON.parse(JSON.stringify(/\.toml$/.test(file) ? parseToml(text) : parseYaml(text)));
}

function kindOf(file: string, doc: Json): Kind {
  if (/\.ya?ml$/.test(file)) return "volantd";
  const top = Object.keys(doc);
  if (top.includes("ghostwire") && !top.includes("networks") && !top.includes("networking")) return "ghostwire";
  return "bolt-network";
}

describe("schemas compile", () => {
  it("all three compile together under ajv strict mode with only the two custom keywords", () => {
    for (const k of KINDS) {
      expect(typeof validators[k]).toBe("function");
      expect(schemas[k].$schema).toBe("https://json-schema.org/draft/2020-12/schema");
      expect(schemas[k].$id).toBe(`${BASE}${k}.schema.json`);
    }
  });

  it("refuses unknown keywords (strict mode is really on)", () => {
    const a = makeAjv();
    expect(() => a.compile({ type: "object", "x-unknown": 1 })).toThrow(/unknown keyword/);
  });
});

describe("seed fixtures validate", () => {
  it("has the expected fixtures", () => {
    for (const f of [
      "full-config.toml",
      "full-ghostwire.toml",
      "full-volantd.yaml",
      "advanced-networking-complete-gaming.toml",
      "advanced-networking-ghostwire.toml",
      "meshvpn-guide-configure-bolt.toml",
      "bolt-readme-network-configuration.toml",
      "volant-networking-custom-subnets.yaml",
    ]) {
      expect(fixtureFiles).toContain(f);
    }
  });

  it.each(fixtureFiles)("%s", (file) => {
    const doc = load(file);
    const kind = kindOf(file, doc);
    expect(fmt(validate(kind, doc)), `${file} as ${kind}`).toBe("");
  });

  it("classifies fixtures as expected", () => {
    expect(kindOf("advanced-networking-ghostwire.toml", load("advanced-networking-ghostwire.toml"))).toBe("ghostwire");
    expect(kindOf("full-ghostwire.toml", load("full-ghostwire.toml"))).toBe("ghostwire");
    expect(kindOf("advanced-networking-complete-gaming.toml", load("advanced-networking-complete-gaming.toml"))).toBe("bolt-network");
    expect(kindOf("full-config.toml", load("full-config.toml"))).toBe("bolt-network");
  });

  it("a [meshvpn] file validates both as a Boltfile and as a mesh file (CONFIG.md detects it as a mesh file)", () => {
    const doc = load("meshvpn-guide-configure-bolt.toml");
    expect(fmt(validate("bolt-network", doc))).toBe("");
    expect(fmt(validate("ghostwire", doc))).toBe("");
  });
});

// --- negatives ------------------------------------------------------------------------

function expectError(kind: Kind, doc: Json, keyword: string, instancePath: string, extra?: (e: ErrorObject) => boolean) {
  const errs = validate(kind, doc);
  const hit = errs.find((e) => e.keyword === keyword && e.instancePath === instancePath && (!extra || extra(e)));
  expect(hit, `expected ${keyword} at ${instancePath || "/"}; got:\n${fmt(errs)}`).toBeDefined();
}

const net = (over: Json = {}) => ({ networks: { n1: { subnet: "10.1.0.0/24", ...over } } });

describe("rejects", () => {
  it("a valid minimal document of each kind is accepted (baseline for the negatives)", () => {
    expect(fmt(validate("bolt-network", net()))).toBe("");
    expect(fmt(validate("ghostwire", { ghostwire: { control_server: "static" } }))).toBe("");
    expect(fmt(validate("volantd", { networking: { mode: "bridge" } }))).toBe("");
    expect(fmt(validate("volantd", {}))).toBe("");
  });

  it("unknown top-level keys", () => {
    expectError("bolt-network", { ...net(), netwroks: {} }, "additionalProperties", "", (e) => e.params.additionalProperty === "netwroks");
    expectError("ghostwire", { ghostwire: {}, peer: [] }, "additionalProperties", "", (e) => e.params.additionalProperty === "peer");
    expectError("volantd", { server: { port: 8080 } }, "additionalProperties", "", (e) => e.params.additionalProperty === "server");
  });

  it("unknown nested keys", () => {
    expectError("bolt-network", net({ subnett: "10.0.0.0/8" }), "additionalProperties", "/networks/n1");
    expectError("bolt-network", { endpoints: [{ name: "web", network: "n1", ipaddr: "10.1.0.5" }] }, "additionalProperties", "/endpoints/0");
    expectError("bolt-network", { firewall: { ddos: { syn_flood: true } } }, "additionalProperties", "/firewall/ddos");
    expectError(
      "bolt-network",
      { wireguard: { wg0: { peers: [{ public_key: "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28=", allowedips: [] }] } } },
      "additionalProperties",
      "/wireguard/wg0/peers/0",
    );
    expectError("bolt-network", { meshvpn: { features: { magicdns: true } } }, "additionalProperties", "/meshvpn/features");
    expectError("ghostwire", { node: { hostnam: "x" } }, "additionalProperties", "/node");
    expectError("volantd", { networking: { bridge: { nam: "volant0" } } }, "additionalProperties", "/networking/bridge");
  });

  it("mtu out of range", () => {
    expectError("bolt-network", net({ mtu: 0 }), "minimum", "/networks/n1/mtu");
    expectError("bolt-network", net({ mtu: 67 }), "minimum", "/networks/n1/mtu");
    expectError("bolt-network", net({ mtu: 65536 }), "maximum", "/networks/n1/mtu");
    expectError("bolt-network", net({ mtu: 1500.5 }), "type", "/networks/n1/mtu");
  });

  it("ports out of range", () => {
    expectError("bolt-network", { port_forwards: [{ host_port: 70000, to: "web:80" }] }, "maximum", "/port_forwards/0/host_port");
    expectError("bolt-network", { port_forwards: [{ host_port: 0, to: "web:80" }] }, "minimum", "/port_forwards/0/host_port");
    expectError("bolt-network", { wireguard: { wg0: { listen_port: 70000 } } }, "maximum", "/wireguard/wg0/listen_port");
    expectError("ghostwire", { node: { listen_port: 70000 } }, "maximum", "/node/listen_port");
    expectError("volantd", { networking: { port_forwards: [{ host_port: 70000, to: "1.2.3.4:80" }] } }, "maximum", "/networking/port_forwards/0/host_port");
    expectError("bolt-network", { firewall: { rules: [{ name: "r", action: "allow", dest_ports: "80:90" }] } }, "pattern", "/firewall/rules/0/dest_ports");
  });

  it("bad names", () => {
    expectError("bolt-network", { networks: { "bad name": { subnet: "10.1.0.0/24" } } }, "pattern", "/networks", (e) => e.params.pattern !== undefined);
    expectError("bolt-network", { networks: { "-lead": {} } }, "pattern", "/networks");
    expectError("bolt-network", { endpoints: [{ name: "web;rm", network: "n1" }] }, "pattern", "/endpoints/0/name");
    expectError("bolt-network", { endpoints: [{ name: "web", network: "n{1}" }] }, "pattern", "/endpoints/0/network");
    expectError("bolt-network", { endpoints: [{ name: "x".repeat(33), network: "n1" }] }, "maxLength", "/endpoints/0/name");
    expectError("bolt-network", { endpoints: [{ name: "web", network: "n1", netns: "a b" }] }, "pattern", "/endpoints/0/netns");
    expectError("bolt-network", { endpoints: [{ name: "web", network: "n1", netns: "n".repeat(65) }] }, "maxLength", "/endpoints/0/netns");
    expectError("bolt-network", { segments: [{ name: 'seg"x' }] }, "pattern", "/segments/0/name");
    expectError("volantd", { networking: { bridge: { name: "volant 0" } } }, "pattern", "/networking/bridge/name");
  });

  it("interface names over 15 characters", () => {
    expectError("bolt-network", net({ bridge: "bolt-gaming-net-1" }), "maxLength", "/networks/n1/bridge");
    expectError("volantd", { networking: { bridge: { name: "volant-bridge-0001" } } }, "maxLength", "/networking/bridge/name");
    expectError("bolt-network", { wireguard: { "wg-very-long-name": {} } }, "maxLength", "/wireguard");
    expectError("ghostwire", { node: { interface: "ghostwire-mesh0" + "x" } }, "maxLength", "/node/interface");
    expectError(
      "bolt-network",
      { ebpf: { programs: [{ name: "p", interface: "enp0s31f6-long-x", attach: "xdp", object: "p.o" }] } },
      "maxLength",
      "/ebpf/programs/0/interface",
    );
    // 15 is fine
    expect(fmt(validate("bolt-network", net({ bridge: "bolt-gaming-123" })))).toBe("");
  });

  it("addresses, enums and other shapes", () => {
    expectError("bolt-network", net({ subnet: "10.1.0.0" }), "pattern", "/networks/n1/subnet");
    expectError("bolt-network", net({ gateway: "10.1.0.1/24" }), "pattern", "/networks/n1/gateway");
    expectError("bolt-network", net({ driver: "overlay" }), "enum", "/networks/n1/driver");
    expectError("bolt-network", net({ ip_range: { start: "10.1.0.10" } }), "required", "/networks/n1/ip_range");
    expectError("bolt-network", { endpoints: [{ name: "web", network: "n1", mac: "02:42:ac:14:01" }] }, "pattern", "/endpoints/0/mac");
    // network is required in mode bridge only: the config layer says so at the endpoint (the schema cannot know the mode's default).
    expectError("bolt-network", { endpoints: [{}] }, "required", "/endpoints/0");
    expectError("bolt-network", { endpoints: [{ name: "web", mode: "container" }] }, "enum", "/endpoints/0/mode");
    expectError("bolt-network", { vpn: { primary: "pptp" } }, "enum", "/vpn/primary");
    expectError("bolt-network", { firewall: { rules: [{ name: "r", action: "permit" }] } }, "enum", "/firewall/rules/0/action");
    expectError("bolt-network", { routing: { routes: [{ destination: "10.0.0.0/8", type: "drop" }] } }, "enum", "/routing/routes/0/type");
    expectError("bolt-network", { ebpf: { programs: [{ name: "p", interface: "eth0", attach: "xdp" }] } }, "oneOf", "/ebpf/programs/0");
    expectError("bolt-network", { wireguard: { wg0: { private_key: "not-a-key" } } }, "pattern", "/wireguard/wg0/private_key");
    expectError("ghostwire", { acls: [{ action: "accept", src: ["*"], dst: ["tag:x"] }] }, "pattern", "/acls/0/dst/0");
    expectError("ghostwire", { acl_tests: [{ src: "tag:x" }] }, "anyOf", "/acl_tests/0");
    expectError("volantd", { networking: { mode: "host" } }, "enum", "/networking/mode");
  });

  it("sysctl keys and values", () => {
    expect(fmt(validate("bolt-network", { sysctl: { "net.ipv4.ip_forward": 1, "net.core.default_qdisc": "fq" } }))).toBe("");
    expectError("bolt-network", { sysctl: { ip_forward: 1 } }, "pattern", "/sysctl");
    expectError("bolt-network", { sysctl: { "net.ipv4.ip_forward": "1\nkernel.panic=1" } }, "pattern", "/sysctl/net.ipv4.ip_forward");
    expectError("bolt-network", { sysctl: { "net.ipv4.ip_forward": true } }, "type", "/sysctl/net.ipv4.ip_forward");
  });
});

// --- the schemas' own rules -----------------------------------------------------------

function resolve(ref: string, doc: Json): { schema: Json; doc: Json } {
  const [file, pointer = ""] = ref.split("#");
  const target = file ? schemas[file.replace(/\.schema\.json$/, "") as Kind] : doc;
  if (!target) throw new Error(`unresolvable $ref ${ref}`);
  let s = target;
  for (const part of pointer.split("/").filter(Boolean)) s = s[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  if (s === undefined) throw new Error(`unresolvable $ref ${ref}`);
  return { schema: s, doc: target };
}

/** Every subschema of a document, with the document it lives in. */
function* subschemas(s: Json, doc: Json, at: string): Generator<{ s: Json; at: string }> {
  if (!s || typeof s !== "object") return;
  yield { s, at };
  for (const key of ["properties", "$defs", "patternProperties"]) {
    for (const [k, v] of Object.entries(s[key] ?? {})) yield* subschemas(v, doc, `${at}/${key}/${k}`);
  }
  for (const key of ["items", "additionalProperties", "propertyNames", "not"]) {
    if (s[key] && typeof s[key] === "object") yield* subschemas(s[key], doc, `${at}/${key}`);
  }
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    for (const [i, v] of (s[key] ?? []).entries()) yield* subschemas(v, doc, `${at}/${key}/${i}`);
  }
}

interface KeyInfo {
  path: string; // e.g. networks.*.subnet, endpoints[].name
  annotated: boolean; // x-not-enforced on it or on an enclosing property
  own?: string; // its own x-not-enforced text
  schema: Json;
}

/** Walk the document shape (following $refs), listing every property path. */
function keyPaths(kind: Kind): KeyInfo[] {
  const out: KeyInfo[] = [];
  const walk = (s0: Json, doc: Json, path: string, annotated: boolean, depth: number) => {
    if (depth > 30 || !s0 || typeof s0 !== "object") return;
    let s = s0;
    let d = doc;
    while (s.$ref) {
      ({ schema: s, doc: d } = resolve(s.$ref, d));
    }
    for (const [k, v] of Object.entries<Json>(s.properties ?? {})) {
      if (v === true) continue; // need(): `properties: { k: true }` beside `required`
      const p = path ? `${path}.${k}` : k;
      const own = v["x-not-enforced"];
      out.push({ path: p, annotated: annotated || own !== undefined, own, schema: v });
      walk(v, d, p, annotated || own !== undefined, depth + 1);
    }
    if (s.items) walk(s.items, d, `${path}[]`, annotated, depth + 1);
    if (s.additionalProperties && typeof s.additionalProperties === "object") walk(s.additionalProperties, d, `${path}.*`, annotated, depth + 1);
    for (const key of ["anyOf", "oneOf", "allOf"]) for (const b of s[key] ?? []) walk(b, d, path, annotated, depth + 1);
  };
  walk(schemas[kind], schemas[kind], "", false, 0);
  return out;
}

const IMPLEMENTED: Record<Kind, string[]> = {
  "bolt-network": [
    "networks",
    ...["name", "driver", "bridge", "subnet", "gateway", "ip_range", "ip_range.start", "ip_range.end", "mtu"].map((k) => `networks.*.${k}`),
    "networks.*.ipv6/**",
    // per-network DNS and name discovery (issue 15)
    ...["dns", "search", "discovery"].map((k) => `networks.*.${k}`),
    // bolt's own dnsmasq per network (issue 15)
    "networks.*.dhcp",
    "networks.*.dhcp_lease_time",
    "endpoints",
    ...["name", "mode", "network", "ip", "ip6", "tap", "netns", "mac", "default", "ifname"].map((k) => `endpoints[].${k}`),
    "sysctl",
    // nftables (issue 3): whole subtrees; their kernel-impossible leaves keep their own text
    "networks.*.internet",
    "networks.*.isolated",
    "port_forwards/**",
    "load_balancers/**",
    "firewall/**",
    "segments/**",
    // WireGuard and the GhostWire mesh (issue 4)
    "wireguard/**",
    "meshvpn/**",
    // bolt watch (issue 5): the metrics endpoint and nft rule counters
    "monitoring",
    "monitoring.listen",
    "monitoring.enable_detailed_metrics",
    // BGP through bolt's own BIRD (issue 12); the rest of [routing] keeps its own annotations
    ...["routing", "routing.enable_bgp", "routing.bgp/**", "routing.routes/**", "routing.policy_based_routing"],
    ...["name", "protocol", "source_ports", "dest_ports", "source", "destination", "iif", "oif", "uidrange", "gateway", "device", "table", "priority"].map(
      (k) => `routing.policies[].${k}`,
    ),
    "routing.policies",
    // traffic control (issue 13): tc trees, ifbs and the rules' nft marks; the seed's latency knobs keep their own text
    "networks.*.bandwidth/**",
    "endpoints[].bandwidth/**",
    "traffic/**",
    "networking",
    "networking.enable_gaming_optimizations",
    // eBPF/XDP programs (issue 13)
    "ebpf/**",
  ],
  ghostwire: [
    "ghostwire",
    "ghostwire.control_server",
    "ghostwire.policy_file",
    "ghostwire.ipv6_cidr",
    "ghostwire.auth_key_file",
    "meshvpn/**",
    "features/**",
    "node/**",
    "peers/**",
    "acls/**",
    "acl_tests/**",
  ],
  volantd: [
    "networking",
    "networking.mode",
    "networking.bridge",
    ...["name", "subnet", "gateway", "ip_range", "ip_range.start", "ip_range.end"].map((k) => `networking.bridge.${k}`),
    "networking.bridge.ipv6/**",
    "networking.bridge.dhcp/**",
    "networking.port_forwards/**",
    // Volant's VM network policies (issue 15): segments of bolt's table
    "networking.policies/**",
    "policies/**",
  ],
};

const NOT_YET = "not implemented in this version yet";
function implemented(kind: Kind, path: string): boolean {
  return IMPLEMENTED[kind].some((p) =>
    p.endsWith("/**") ? path === p.slice(0, -3) || path.startsWith(p.slice(0, -3) + ".") || path.startsWith(p.slice(0, -3) + "[]") : path === p,
  );
}

describe("schema rules", () => {
  it.each(KINDS)("%s: every object is closed (additionalProperties false, or a name-checked map)", (kind) => {
    const bad: string[] = [];
    for (const { s, at } of subschemas(schemas[kind], schemas[kind], "#")) {
      const isObject = s.type === "object" || (Array.isArray(s.type) && s.type.includes("object"));
      if (!isObject) continue;
      const closed = s.additionalProperties === false;
      const checkedMap = typeof s.propertyNames?.pattern === "string" && typeof s.additionalProperties === "object";
      if (!closed && !checkedMap) bad.push(at);
    }
    expect(bad).toEqual([]);
  });

  it.each(KINDS)("%s: every property has a description", (kind) => {
    const bad = keyPaths(kind)
      .filter((k) => typeof k.schema.description !== "string" || k.schema.description.length < 3)
      .map((k) => k.path);
    expect(bad).toEqual([]);
    for (const { s, at } of subschemas(schemas[kind], schemas[kind], "#")) {
      if (at.startsWith("#/$defs/") && at.split("/").length === 3) expect(typeof s.description, at).toBe("string");
    }
  });

  it.each(KINDS)("%s: x-not-enforced is on exactly the keys not implemented in this version", (kind) => {
    const keys = keyPaths(kind);
    expect(keys.length).toBeGreaterThan(5);
    // Annotated exactly when not implemented yet, or when the kernel cannot honour the key (own text).
    const own = new Map(keys.map((k) => [k.path, k.own]));
    // A key is covered by its own text or by an ancestor's kernel-impossible text.
    const impossible = (path: string) =>
      [...own].some(([p, t]) => t !== undefined && t !== NOT_YET && (path === p || path.startsWith(p + ".") || path.startsWith(p + "[]")));
    const wrong = keys
      .filter((k) => k.annotated !== (!implemented(kind, k.path) || impossible(k.path)))
      .map((k) => `${k.path} (${k.annotated ? "annotated but implemented" : "implemented? not annotated"})`);
    expect(wrong).toEqual([]);
    for (const p of IMPLEMENTED[kind]) expect(keys.map((k) => k.path)).toContain(p.replace(/\/\*\*$/, ""));
  });

  it("kernel-impossible seed keys carry their own x-not-enforced text", () => {
    const own = (kind: Kind, path: string) => keyPaths(kind).find((k) => k.path === path)?.own;
    expect(own("ghostwire", "ghostwire.nat_traversal")).toMatch(/STUN/);
    expect(own("ghostwire", "features.nat_traversal")).toMatch(/STUN/);
    expect(own("bolt-network", "meshvpn.nat_traversal")).toMatch(/STUN/);
    expect(own("bolt-network", "meshvpn.features.nat_traversal")).toMatch(/STUN/);
    expect(own("bolt-network", "ghostwire.gaming_mode")).toBeTruthy();
    expect(own("bolt-network", "mesh.discovery")).toBeTruthy();
    expect(own("bolt-network", "mesh.encryption")).toBeTruthy();
    expect(own("bolt-network", "monitoring.gaming_analytics")).toBeTruthy();
    expect(own("bolt-network", "monitoring.real_time_updates")).toBeTruthy();
    expect(own("bolt-network", "quic")).toMatch(/QUIC/);
    expect(own("bolt-network", "openvpn")).toMatch(/OpenVPN/);
    expect(own("bolt-network", "firewall.ddos.geographic_blocking")).toMatch(/GeoIP/);
    expect(own("ghostwire", "gaming.anti_cheat_integration")).toMatch(/anti-cheat/);
    expect(own("ghostwire", "gaming.frame_synchronization")).toMatch(/frame sync/);
    expect(own("ghostwire", "encryption.post_quantum_ready")).toMatch(/post-quantum/);
    expect(own("ghostwire", "integrations")).toMatch(/Kubernetes/);
    expect(own("bolt-network", "networks.*.bandwidth")).toBeUndefined();
    expect(own("bolt-network", "traffic.rules[].latency_target")).toMatch(/latency/);
    expect(own("bolt-network", "routing.gaming_traffic_priority")).toBe(NOT_YET);
    expect(own("bolt-network", "networks.*.internet")).toBeUndefined();
    expect(own("bolt-network", "firewall")).toBeUndefined();
  });

  it("schema/README.md lists every key with its own x-not-enforced text", () => {
    const readme = readFileSync(`${root}schema/README.md`, "utf8");
    for (const kind of KINDS) {
      const section = readme.split(`### ${kind}\n`)[1]?.split("\n### ")[0] ?? "";
      const missing = keyPaths(kind)
        .filter((k) => k.own !== undefined && !section.includes(`| \`${k.path}\` | ${k.own} |`))
        .map((k) => k.path);
      expect(missing, `${kind} rows missing or stale in schema/README.md`).toEqual([]);
    }
  });

  it("secrets are writeOnly", () => {
    for (const kind of KINDS) {
      for (const k of keyPaths(kind)) {
        const leaf = k.path.split(".").pop()!.replace(/\[\]$/, "");
        if (["auth_key", "private_key", "preshared_key", "password", "authentication"].includes(leaf)) {
          expect(k.schema.writeOnly, `${kind}: ${k.path}`).toBe(true);
        }
      }
    }
    expect(keyPaths("ghostwire").some((k) => k.path === "ghostwire.auth_key")).toBe(true);
  });

  it("x-bolt-kind names the resource kinds", () => {
    const kinds = (k: Kind) =>
      Object.values<Json>(schemas[k].$defs)
        .map((d) => d["x-bolt-kind"])
        .filter(Boolean);
    expect(kinds("bolt-network")).toEqual(
      expect.arrayContaining([
        "network",
        "endpoint",
        "port_forward",
        "firewall",
        "firewall_rule",
        "ddos",
        "segment",
        "wireguard_interface",
        "wireguard_peer",
        "route",
        "policy_route",
        "bgp",
        "load_balancer",
        "traffic_rule",
        "ebpf_program",
        "sysctl",
        "monitoring",
      ]),
    );
    expect(kinds("ghostwire")).toEqual(expect.arrayContaining(["node", "peer", "acl", "acl_test"]));
    expect(kinds("volantd")).toEqual(expect.arrayContaining(["network", "port_forward"]));
  });

  it("volantd bridge defaults follow CONFIG.md", () => {
    const d = schemas.volantd.$defs;
    expect(d.networking.properties.mode.default).toBe("bridge");
    expect(d.bridge.properties.name.default).toBe("volant0");
    expect(d.bridge.properties.subnet.default).toBe("192.168.127.0/24");
    expect(d.bridge.properties.gateway.default).toBe("192.168.127.1");
    expect(d.ip_range.properties.start.default).toBe("192.168.127.100");
    expect(d.ip_range.properties.end.default).toBe("192.168.127.254");
  });
});
