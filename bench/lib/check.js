import { ip, must, run } from "./exec.js";
import { listNetns } from "./netns.js";

/**
 * A timing only counts when the kernel really holds the result: every method's apply must
 * leave N up bridges with the gateway address and N up veths enslaved to them in the target,
 * and N endpoint namespaces each with eth0 up, its address and the default route.
 * Inside checks are sampled (first, middle, last endpoint) to keep the check cheap at N=1000.
 */
export async function checkApplied(ctx) {
  const links = JSON.parse((await must(ip(ctx.target, "-j", "-d", "link", "show"))).stdout);
  const addrs = JSON.parse((await must(ip(ctx.target, "-j", "addr", "show"))).stdout);
  const byName = new Map(links.map((l) => [l.ifname, l]));
  const addrOf = new Map(addrs.map((a) => [a.ifname, a.addr_info.filter((x) => x.family === "inet").map((x) => `${x.local}/${x.prefixlen}`)]));
  const problems = [];
  for (const t of ctx.items) {
    const br = byName.get(t.bridge);
    const v = byName.get(t.hostIf);
    if (br?.linkinfo?.info_kind !== "bridge" || !br.flags.includes("UP") || !addrOf.get(t.bridge)?.includes(`${t.gw}/24`))
      problems.push(`bridge ${t.bridge} missing, down or without ${t.gw}/24`);
    if (v?.linkinfo?.info_kind !== "veth" || v.master !== t.bridge || !v.flags.includes("UP"))
      problems.push(`veth ${t.hostIf} missing, down or not on ${t.bridge}`);
    if (problems.length > 5) break;
  }
  const names = new Set(await listNetns());
  const missing = ctx.items.filter((t) => !names.has(t.netns));
  if (missing.length) problems.push(`${missing.length} endpoint namespaces missing (e.g. ${missing[0].netns})`);
  const n = ctx.items.length;
  for (const t of [...new Set([ctx.items[0], ctx.items[n >> 1], ctx.items[n - 1]])]) {
    if (missing.includes(t)) continue;
    const a = JSON.parse((await must(ip(t.netns, "-j", "addr", "show", "dev", "eth0"))).stdout)[0];
    const r = JSON.parse((await must(ip(t.netns, "-j", "-4", "route", "show", "default"))).stdout);
    const lo = JSON.parse((await must(ip(t.netns, "-j", "link", "show", "lo"))).stdout)[0];
    if (!a?.flags.includes("UP") || !a.addr_info.some((x) => x.local === t.ip && x.prefixlen === 24))
      problems.push(`${t.netns}: eth0 down or without ${t.ip}/24`);
    if (!r.some((x) => x.gateway === t.gw && x.dev === "eth0")) problems.push(`${t.netns}: no default route via ${t.gw}`);
    if (!lo?.flags.includes("UP")) problems.push(`${t.netns}: lo is down`);
  }
  if (problems.length) throw new Error(`${ctx.method} N=${n}: the kernel does not hold what apply should have made: ${problems.slice(0, 6).join("; ")}`);
}

/** After a teardown the target holds only lo, no nft table, ip_forward is 0 again, and no endpoint namespace is left. */
export async function checkTornDown(ctx) {
  const links = JSON.parse((await must(ip(ctx.target, "-j", "link", "show"))).stdout);
  const left = links.filter((l) => l.ifname !== "lo").map((l) => l.ifname);
  const names = new Set(await listNetns());
  const nsLeft = ctx.items.filter((t) => names.has(t.netns)).map((t) => t.netns);
  const nft = await run(["ip", "netns", "exec", ctx.target, "nft", "list", "tables"]);
  const fwd = (await must(["ip", "netns", "exec", ctx.target, "sysctl", "-n", "net.ipv4.ip_forward"])).stdout.trim();
  const problems = [];
  if (left.length) problems.push(`${left.length} links (${left.slice(0, 3).join(", ")})`);
  if (nsLeft.length) problems.push(`${nsLeft.length} namespaces (${nsLeft.slice(0, 3).join(", ")})`);
  if (nft.stdout.trim()) problems.push(`nft tables: ${nft.stdout.trim().replace(/\n/g, ", ")}`);
  if (fwd !== "0") problems.push(`net.ipv4.ip_forward = ${fwd}`);
  if (problems.length) throw new Error(`${ctx.method} N=${ctx.items.length}: teardown left ${problems.join("; ")}`);
}
