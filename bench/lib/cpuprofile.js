import { readFileSync } from "node:fs";

/** Short location of a profile frame: package name for node_modules, dist path for bolt. */
function where(url) {
  if (!url) return "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0)
    return url
      .slice(nm + 13)
      .split("/")
      .slice(0, url.slice(nm + 13).startsWith("@") ? 2 : 1)
      .join("/");
  const d = url.indexOf("/dist/");
  if (d >= 0) return url.slice(d + 1);
  return url.replace(/^file:\/\//, "");
}

/**
 * Summarises a V8 .cpuprofile: self time by file/package, self time by function, and
 * inclusive time by function (a function counted once per sample however deep it recurses).
 */
export function summarizeProfile(file, top = 25) {
  const p = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  let totalUs = 0;
  p.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + p.timeDeltas[i]);
    totalUs += p.timeDeltas[i];
  });
  const label = (n) => `${n.callFrame.functionName || "(anonymous)"} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
  const byFile = new Map();
  const byFn = new Map();
  const incl = new Map();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    add(byFile, where(n.callFrame.url), us);
    add(byFn, label(n), us);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = label(byId.get(cur));
      if (!seen.has(k)) add(incl, k, us), seen.add(k);
    }
  }
  const topOf = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => ({ ms: us / 1000, what: k }));
  return { sampledMs: totalUs / 1000, byFile: topOf(byFile), selfByFunction: topOf(byFn), inclusive: topOf(incl) };
}
