import { median } from "./exec.js";

export const TARGETS = { applyRatioMax: 2, noopPlanMsMax: 300, atN: 1000 };

const fmt = (x, d = 0) => (x === undefined || x === null || Number.isNaN(x) ? "–" : x.toFixed(d));

/** Medians per (N, method) and the ratio of each apply to the floor's at the same N. */
export function summarize(samples) {
  const rows = [];
  const groups = new Map();
  for (const s of samples) {
    const k = `${s.n}\0${s.method}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(s);
  }
  for (const xs of groups.values()) {
    const { n, method } = xs[0];
    const teardown = xs.map((x) => x.teardownMs).filter((x) => x !== undefined);
    rows.push({
      n,
      method,
      runs: xs.length,
      applyMs: median(xs.map((x) => x.applyMs)),
      applySamplesMs: xs.map((x) => Math.round(x.applyMs)),
      noopPlanMs: median(xs.flatMap((x) => x.planMs ?? [])),
      noopPlanSamplesMs: xs.flatMap((x) => (x.planMs ?? []).map(Math.round)),
      teardownMs: median(teardown),
      teardownSettleMs: median(xs.map((x) => x.settleAfterMs).filter((x) => x !== undefined)),
    });
  }
  const order = { bolt: 0, floor: 1, "floor-nsenter": 2, perproc: 3 };
  rows.sort((a, b) => a.n - b.n || order[a.method] - order[b.method]);
  for (const r of rows) {
    const floor = rows.find((f) => f.n === r.n && f.method === "floor");
    r.ratioToFloor = floor ? r.applyMs / floor.applyMs : undefined;
    r.teardownRatioToFloor = floor && r.teardownMs !== undefined ? r.teardownMs / floor.teardownMs : undefined;
  }
  return rows;
}

export function verdicts(rows) {
  const out = [];
  const bolt = rows.find((r) => r.n === TARGETS.atN && r.method === "bolt");
  if (!bolt) return out;
  if (bolt.ratioToFloor !== undefined)
    out.push({
      target: `apply ≤ ${TARGETS.applyRatioMax}× floor at N=${TARGETS.atN}`,
      value: `${fmt(bolt.ratioToFloor, 2)}×`,
      pass: bolt.ratioToFloor <= TARGETS.applyRatioMax,
    });
  if (bolt.noopPlanMs !== undefined)
    out.push({
      target: `no-op plan < ${TARGETS.noopPlanMsMax} ms at N=${TARGETS.atN}`,
      value: `${fmt(bolt.noopPlanMs)} ms`,
      pass: bolt.noopPlanMs < TARGETS.noopPlanMsMax,
    });
  return out;
}

export function markdown(result) {
  const { rows, env, breakdown } = result;
  const L = [];
  L.push(`# bolt benchmark — ${env.date}`, "");
  L.push(
    `${env.kernel}, ${env.cpus} vCPU, node ${env.node}, ${env.iproute2}; load average ${env.loadStart.map((x) => x.toFixed(2)).join(" ")} at start, ${env.loadEnd.map((x) => x.toFixed(2)).join(" ")} at end.`,
    "",
  );
  L.push("| N | method | apply ms | no-op plan ms | teardown ms | apply ÷ floor | teardown ÷ floor | runs |");
  L.push("|---:|---|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    L.push(
      `| ${r.n} | ${r.method} | ${fmt(r.applyMs)} | ${fmt(r.noopPlanMs)} | ${fmt(r.teardownMs)} | ${fmt(r.ratioToFloor, 2)} | ${fmt(r.teardownRatioToFloor, 2)} | ${r.runs} |`,
    );
  }
  L.push(
    "",
    "Medians. apply and plan are wall clock of the whole CLI process (`node bin/bolt.js …`); teardown is `bolt destroy` for bolt and the batched deletes for the floor (perproc is torn down the floor's way, untimed).",
    "",
  );
  const v = verdicts(rows);
  if (v.length) {
    L.push("## Targets", "");
    for (const x of v) L.push(`- ${x.pass ? "PASS" : "FAIL"}: ${x.target} — ${x.value}`);
    L.push("");
  }
  if (breakdown) {
    const rf = breakdown.readFloor;
    L.push(`## Where a no-op plan's time goes (N=${breakdown.n})`, "");
    L.push("| read (in the target) | ms | JSON.parse ms | KiB |", "|---|---:|---:|---:|");
    for (const r of Object.values(rf.reads))
      L.push(
        `| \`${r.argv.replace(/^ip -n \S+ /, "ip ").replace(/^ip netns exec \S+ /, "ip netns exec T ")}\` | ${fmt(r.ms, 1)} | ${r.parseMs ? fmt(r.parseMs, 1) : "–"} | ${fmt(r.bytes / 1024)} |`,
      );
    L.push(`| **link + addr, sequential incl. parse (the read floor)** | ${fmt(rf.linkPlusAddrSequentialMs, 1)} | | |`);
    L.push(`| link + addr, in parallel | ${fmt(rf.linkPlusAddrParallelMs, 1)} | | |`);
    L.push(`| all of the above in parallel | ${fmt(rf.allPlanReadsParallelMs, 1)} | | |`);
    L.push(`| \`node -e 0\` (process floor) | ${fmt(rf.nodeStartupMs, 1)} | | |`);
    L.push("");
    const p = breakdown.planPhases;
    if (p) {
      L.push("| `bolt plan` phase (in-process replay, fresh node) | ms |", "|---|---:|");
      const names = {
        bootMs: "node bootstrap until first user line",
        importCliMs: p.bundled ? "import the CLI (bundled like dist/cli/bolt.mjs)" : "import the CLI module graph",
        loggerMs: "makeLogger",
        loadIntentMs: "loadIntent (parse + schema + normalize)",
        checkTargetMs: "checkTarget: `ip -j netns list`, the first command (execa loads here)",
        readStateMs: "open state store read-only",
        makePlanMs: "makePlan (reads + desired + diff)",
        readLiveAgainMs: "  of which: readLive alone, warm",
        renderMs: "render plan text",
        totalMs: "total in-process",
        wallMs: "wall clock of the replay process",
      };
      for (const [k, label] of Object.entries(names)) if (p[k] !== undefined) L.push(`| ${label} | ${fmt(p[k], 1)} |`);
      L.push("");
    }
  }
  if (result.notes?.length) {
    L.push("## Notes", "");
    for (const n of result.notes) L.push(`- ${n}`);
    L.push("");
  }
  return L.join("\n");
}
