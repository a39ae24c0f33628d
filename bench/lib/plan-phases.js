// Child process: `node plan-phases.js LIB BOLTFILE TARGET PREFIX STATE_DIR` imports LIB (the
// bundled or plain plan-phases-lib.js), runs the phases of `bolt plan` and prints their times as JSON.
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";

const bootMs = performance.now(); // node start → first line of user code
const [lib, ...args] = process.argv.slice(2);
const t0 = performance.now();
const { planPhases } = await import(pathToFileURL(lib).href);
const importCliMs = performance.now() - t0;
const phases = await planPhases(...args);
process.stdout.write(JSON.stringify({ bootMs, importCliMs, ...phases, totalMs: performance.now() }) + "\n");
