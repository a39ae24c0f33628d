#!/usr/bin/env node
// WireGuard benchmark (issue 4): N peers on one userspace interface (wireguard-go) in a
// throwaway namespace. bolt's apply (the whole CLI: start wireguard-go, address, every peer in
// one `wg set`, one route per allowed IP, verify) and a one-peer change, against `wg setconf`
// of the same peers (and `wg syncconf` for the one-peer change, the session-keeping tool), in
// the same run, fresh namespaces per run. Median of --runs.
// Options: --peers 10,100,1000  --runs 3        Run after `npm run build`; needs root.
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RESULTS = join(ROOT, "bench", "results");
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const PEERS = opt("peers", "10,100,1000").split(",").map(Number);
const RUNS = Number(opt("runs", "3"));
const TAG = randomBytes(2).toString("hex");
const log = (s) => process.stderr.write(s + "\n");

function sh(argv, input) {
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: "utf8", maxBuffer: 1 << 30 });
  const ms = performance.now() - t0;
  if (r.status !== 0 && r.status !== 2) throw new Error(`${argv.join(" ")} exited ${r.status}: ${(r.stderr || "").slice(0, 400)}`);
  return { ms, code: r.status, stdout: r.stdout };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const inNs = (ns, argv) => ["ip", "netns", "exec", ns, ...argv];
/** `wg` for a device bolt made in NS: its control socket is in NS's own /var/run/wireguard (bolt's run dir). */
const WG_RUN = `${process.env.BOLT_RUN_DIR || "/run/bolt"}/wg`;
const inBoltNs = (ns, argv) => ["nsenter", `--net=/run/netns/${ns}`, `--mount=${WG_RUN}/${ns}.mnt`, "--", ...argv];

/** PIDs of `wireguard-go IF` (this run's names carry TAG: they are ours). */
function wgPids(ifname) {
  const r = spawnSync("pgrep", ["-f", `^wireguard-go ${ifname}$`], { encoding: "utf8" });
  return (r.stdout || "").trim().split("\n").filter(Boolean).map(Number);
}

/**
 * A fresh namespace for fn. Teardown deletes the WireGuard device first: wireguard-go lives in
 * the namespace (keeping it alive) as long as its tun device does.
 */
function withNetns(name, ifname, fn) {
  execFileSync("ip", ["netns", "add", name]);
  try {
    execFileSync("ip", ["-n", name, "link", "set", "lo", "up"]);
    return fn(name);
  } finally {
    spawnSync("ip", ["-n", name, "link", "del", ifname]);
    for (let i = 0; i < 50 && wgPids(ifname).length; i++) spawnSync("sleep", ["0.1"]);
    for (const pid of wgPids(ifname)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    rmSync(`/var/run/wireguard/${ifname}.sock`, { force: true });
    // bolt's private /var/run/wireguard for this namespace (made by its apply)
    spawnSync("umount", [`${WG_RUN}/${name}.mnt`]);
    rmSync(`${WG_RUN}/${name}.mnt`, { force: true });
    rmSync(`${WG_RUN}/${name}`, { recursive: true, force: true });
    spawnSync("ip", ["netns", "del", name]);
  }
}

/** N peers: random 32-byte public keys (any 32 bytes are a Curve25519 public key), one /32 each. */
function peers(n) {
  return Array.from({ length: n }, (_, i) => ({
    pub: randomBytes(32).toString("base64"),
    allowed: [`10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`],
    endpoint: `198.51.100.${(i % 250) + 1}:${20000 + i}`,
  }));
}

function boltfile(ifname, keyFile, ps) {
  const out = [`[wireguard.${ifname}]`, `private_key_file = "${keyFile}"`, "listen_port = 51820", 'address = "10.99.0.1/16"', ""];
  for (const p of ps)
    out.push(`[[wireguard.${ifname}.peers]]`, `public_key = "${p.pub}"`, `allowed_ips = ${JSON.stringify(p.allowed)}`, `endpoint = "${p.endpoint}"`, "");
  return out.join("\n");
}

/** The same interface and peers in wg(8)'s format (`wg setconf` / `wg syncconf`). */
function wgConf(privateKey, ps) {
  const out = ["[Interface]", `PrivateKey = ${privateKey}`, "ListenPort = 51820", ""];
  for (const p of ps) out.push("[Peer]", `PublicKey = ${p.pub}`, `AllowedIPs = ${p.allowed.join(", ")}`, `Endpoint = ${p.endpoint}`, "");
  return out.join("\n");
}

const peerLines = (ns, ifname, via = inBoltNs) =>
  sh(via(ns, ["wg", "show", ifname, "dump"]))
    .stdout.trim()
    .split("\n").length - 1;

function boltRun(dir, n, ps, changed) {
  const ifname = `wb${TAG}${n}b`;
  const keyFile = join(dir, "wg.key");
  execFileSync("sh", ["-c", `umask 077 && wg genkey > '${keyFile}'`]);
  return withNetns(`bolt-t-wgb-${TAG}-${n}-bolt`, ifname, (ns) => {
    const file = join(dir, "bolt-network.toml");
    const state = join(dir, "state");
    const bolt = (...a) => ["node", join(ROOT, "bin", "bolt.js"), ...a, "-f", file, "--netns", ns, "--state-dir", state, "--log-level", "error"];
    writeFileSync(file, boltfile(ifname, keyFile, ps));
    const apply = sh(bolt("apply"));
    if (peerLines(ns, ifname) !== n) throw new Error(`bolt apply: expected ${n} peers`);
    const routes = JSON.parse(sh(["ip", "-n", ns, "-j", "route", "show", "proto", "176"]).stdout).length;
    if (routes !== n) throw new Error(`bolt apply: expected ${n} routes, got ${routes}`);
    const noop = sh(bolt("plan", "--detailed-exitcode"));
    if (noop.code !== 0) throw new Error("no-op plan after apply was not empty");
    writeFileSync(file, boltfile(ifname, keyFile, changed));
    const change = sh(bolt("apply"));
    const allowed = sh(inBoltNs(ns, ["wg", "show", ifname, "allowed-ips"])).stdout;
    if (!allowed.includes(changed[0].allowed[1])) throw new Error("bolt: the one-peer change is not in the kernel");
    if (sh(bolt("plan", "--detailed-exitcode")).code !== 0) throw new Error("plan after the one-peer change was not empty");
    return { apply: apply.ms, change: change.ms, plan: noop.ms };
  });
}

/** wg's floor: the device (wireguard-go, address, up), `wg setconf`, the routes bolt also adds (one ip -batch). */
function wgRun(dir, n, ps, changed) {
  const ifname = `wb${TAG}${n}f`;
  const priv = execFileSync("wg", ["genkey"], { encoding: "utf8" }).trim();
  const conf = join(dir, "wg.conf");
  const conf2 = join(dir, "wg-changed.conf");
  writeFileSync(conf, wgConf(priv, ps), { mode: 0o600 });
  writeFileSync(conf2, wgConf(priv, changed), { mode: 0o600 });
  try {
    return withNetns(`bolt-t-wgb-${TAG}-${n}-wg`, ifname, (ns) => {
      const dev =
        sh(inNs(ns, ["wireguard-go", ifname])).ms +
        sh(["ip", "-n", ns, "address", "add", "10.99.0.1/16", "dev", ifname]).ms +
        sh(["ip", "-n", ns, "link", "set", ifname, "mtu", "1420", "up"]).ms;
      const setconf = sh(inNs(ns, ["wg", "setconf", ifname, conf])).ms;
      if (peerLines(ns, ifname, inNs) !== n) throw new Error(`wg setconf: expected ${n} peers`);
      const routes = sh(["ip", "-n", ns, "-batch", "-"], ps.map((p) => `route replace ${p.allowed[0]} dev ${ifname} proto 176`).join("\n") + "\n").ms;
      // One peer changed: setconf (replaces the whole peer list) and syncconf (touches only the difference).
      const changeSet = sh(inNs(ns, ["wg", "setconf", ifname, conf2])).ms;
      sh(inNs(ns, ["wg", "setconf", ifname, conf]));
      const changeSync = sh(inNs(ns, ["wg", "syncconf", ifname, conf2])).ms;
      if (!sh(inNs(ns, ["wg", "show", ifname, "allowed-ips"])).stdout.includes(changed[0].allowed[1]))
        throw new Error("wg syncconf: the change is not in the kernel");
      return { setconf, full: dev + setconf + routes, changeSet, changeSync };
    });
  } finally {
    rmSync(conf, { force: true });
    rmSync(conf2, { force: true });
  }
}

const rows = [];
const tmp = mkdtempSync(join(tmpdir(), "bolt-bench-wg-"));
try {
  for (const n of PEERS) {
    const b = { apply: [], change: [], plan: [] };
    const w = { setconf: [], full: [], changeSet: [], changeSync: [] };
    for (let r = 0; r < RUNS; r++) {
      const ps = peers(n);
      // The one-peer change: the first peer gets a second allowed IP (and so a second route).
      const changed = ps.map((p, i) => (i === 0 ? { ...p, allowed: [...p.allowed, `10.250.${r}.1/32`] } : p));
      const bolt = boltRun(mkdtempSync(join(tmp, `b${n}-`)), n, ps, changed);
      const wg = wgRun(mkdtempSync(join(tmp, `w${n}-`)), n, ps, changed);
      for (const k of Object.keys(b)) b[k].push(bolt[k]);
      for (const k of Object.keys(w)) w[k].push(wg[k]);
    }
    const row = {
      peers: n,
      ...Object.fromEntries([...Object.entries(b).map(([k, v]) => [`bolt_${k}`, median(v)]), ...Object.entries(w).map(([k, v]) => [`wg_${k}`, median(v)])]),
    };
    rows.push(row);
    log(
      `${n} peers: bolt apply ${row.bolt_apply.toFixed(0)} ms (wg floor ${row.wg_full.toFixed(0)}, setconf ${row.wg_setconf.toFixed(0)}), one-peer change bolt ${row.bolt_change.toFixed(0)} ms (setconf ${row.wg_changeSet.toFixed(0)}, syncconf ${row.wg_changeSync.toFixed(0)}), no-op plan ${row.bolt_plan.toFixed(0)} ms`,
    );
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const f = (x) => x.toFixed(0);
const md = [
  `# bolt WireGuard benchmark — ${new Date().toISOString()}`,
  "",
  `wireguard-go (userspace; no kernel module on this machine). Load average at end: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}; medians of ${RUNS} run(s); wall clock of whole processes, ms.`,
  "",
  "| peers | bolt apply | wg floor (wireguard-go + addr + `wg setconf` + routes) | `wg setconf` alone | bolt one-peer change | `wg setconf`, one peer changed | `wg syncconf`, one peer changed | bolt no-op plan |",
  "|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...rows.map(
    (r) =>
      `| ${r.peers} | ${f(r.bolt_apply)} | ${f(r.wg_full)} | ${f(r.wg_setconf)} | ${f(r.bolt_change)} | ${f(r.wg_changeSet)} | ${f(r.wg_changeSync)} | ${f(r.bolt_plan)} |`,
  ),
  "",
  "bolt apply = the whole CLI from a cold start: load + validate (the private key file is checked and its public key derived), read the namespace, plan, start `wireguard-go IF`, address and MTU, every peer in one `wg set IF peer … peer …`, one route per allowed IP (one `ip -batch`), verify by re-reading `wg show IF dump` and the routes, commit. The wg floor does the same kernel work by hand: `wireguard-go`, `ip address add`, `ip link set up`, `wg setconf` of a file with the same peers, one `ip -batch` of the same routes. The one-peer change gives the first peer a second allowed IP (bolt: one `wg set` clause and one route; `wg setconf` rewrites the whole peer list, which resets every session; `wg syncconf` changes only that peer but adds no route).",
].join("\n");
mkdirSync(RESULTS, { recursive: true });
writeFileSync(join(RESULTS, "wireguard-latest.md"), md + "\n");
writeFileSync(join(RESULTS, "wireguard-latest.json"), JSON.stringify(rows, null, 2) + "\n");
process.stdout.write(md + "\n");
