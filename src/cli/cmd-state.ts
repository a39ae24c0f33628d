import { EXIT } from "../core/diagnostics.js";
import { exportState } from "../core/host-state.js";
import { emptyIntent } from "../core/intent.js";
import type { Intent } from "../core/intent.js";
import { ProcessRunner } from "../exec/process-runner.js";
import { REGISTRY } from "../../reconcilers/registry.js";
import { checkTarget, readState, target } from "./commands.js";
import type { GlobalOpts } from "./commands.js";
import { loadIntent } from "./config.js";

/**
 * `bolt state export [-f FILE…]`: the target's owned live state as JSON on stdout, for
 * `bolt plan --state FILE` on a machine with no access to this one. With -f, the current
 * values of the sysctls the config names are included too (bolt reads only what it is asked about).
 */
export async function cmdStateExport(o: GlobalOpts): Promise<number> {
  const intent: Intent = o.file.length ? loadIntent(o.file, o.netnsPrefix).intent : emptyIntent();
  const runner = o.runner ?? new ProcessRunner();
  const t = target(o);
  await checkTarget(runner, t);
  const { state, diagnostics } = await exportState(runner, t, REGISTRY, intent, readState(o));
  for (const d of diagnostics) o.log.warn({ message: d.message }, "state.export.read");
  o.out(JSON.stringify(state, null, 2) + "\n");
  return EXIT.OK;
}
