import yargs from "yargs";
import type { Argv } from "yargs";
import { BoltError, EXIT, formatDiagnostic } from "../core/diagnostics.js";
import { cmdApply, cmdFirewallAnalyze, cmdPlan, cmdRollback, cmdShow, cmdValidate } from "./commands.js";
import type { GlobalOpts } from "./commands.js";
import { makeLogger } from "./logger.js";

const out = (s: string) => process.stdout.write(s);
const err = (s: string) => process.stderr.write(s);

interface RawArgs {
  file?: string[];
  netns?: string;
  "state-dir": string;
  "netns-prefix"?: string;
  "lock-timeout": number;
  "log-level": string;
  json?: boolean;
  [k: string]: unknown;
}

/** The CLI: yargs commands and the one place errors become messages and exit codes. */
export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.OK;
  // yargs' inferred argument types do not survive shared builders; RawArgs is the contract.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const run = (fn: (o: GlobalOpts, a: RawArgs) => Promise<number>, needsFiles = true) => async (a: any) => {
    if (needsFiles && !a.file?.length) throw new BoltError("no config file given: use -f bolt-network.toml (repeatable)");
    const log = await makeLogger(a["log-level"], a.json);
    const o: GlobalOpts = { file: a.file ?? [], netns: a.netns, stateDir: a["state-dir"], netnsPrefix: a["netns-prefix"], lockTimeout: a["lock-timeout"], json: a.json, log, out, err };
    code = await fn(o, a);
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const files = (y: Argv<any>): Argv<any> => y.option("file", { alias: "f", type: "string", array: true, describe: "config file (bolt-network.toml, ghostwire.toml, volantd.yaml); repeatable" });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const parser = (yargs(argv) as Argv<any>)
    .scriptName("bolt")
    .usage("$0 <command> [options]\n\nDeclarative Linux networking: plan, apply and verify bridges, endpoints and sysctls against the kernel.")
    .option("netns", { type: "string", describe: "read and write inside this existing network namespace" })
    .option("state-dir", { type: "string", default: process.env.BOLT_STATE_DIR ?? "/var/lib/bolt", describe: "leases, journal, history" })
    .option("netns-prefix", { type: "string", default: process.env.BOLT_NETNS_PREFIX, describe: "prefix for every endpoint namespace name" })
    .option("lock-timeout", { type: "number", default: 10, describe: "seconds to wait for another bolt working on the same target" })
    .option("log-level", { type: "string", default: process.env.BOLT_LOG_LEVEL ?? "warn", choices: ["trace", "debug", "info", "warn", "error", "fatal", "silent"] })
    .option("json", { type: "boolean", describe: "machine-readable output" })
    .command("validate", "check config files offline (schema, addresses, references)", files, run(cmdValidate))
    .command(
      "plan",
      "show what apply would change (writes nothing)",
      (y) =>
        files(y)
          .option("detailed-exitcode", { type: "boolean", describe: "exit 0 when no changes, 2 when there are changes, 1 on error" })
          .option("deep", { type: "boolean", describe: "also enter every endpoint namespace to check the inside" })
          .option("show-commands", { type: "boolean", describe: "print the kernel commands under each change" })
          .option("destroy", { type: "boolean", describe: "plan the removal of everything bolt owns" }),
      run((o, a) => cmdPlan({ ...o, detailedExitcode: a["detailed-exitcode"] as boolean, deep: a.deep as boolean, showCommands: a["show-commands"] as boolean, destroy: a.destroy as boolean }), false),
    )
    .command(
      "apply",
      "make the kernel match the config (verified, rolled back on failure)",
      (y) => files(y).option("show-commands", { type: "boolean" }).option("deep", { type: "boolean" }),
      run((o, a) => cmdApply({ ...o, showCommands: a["show-commands"] as boolean, deep: a.deep as boolean })),
    )
    .command("destroy", "remove everything bolt owns in the target and restore recorded sysctls", (y) => files(y).option("show-commands", { type: "boolean" }), run((o, a) => cmdApply({ ...o, destroy: true, showCommands: a["show-commands"] as boolean }), false))
    .command("show", "what bolt owns right now, read from the kernel", (y) => y.option("deep", { type: "boolean" }), run((o, a) => cmdShow({ ...o, deep: a.deep as boolean }), false))
    .command("rollback", "undo an apply that was interrupted (kill -9, power loss)", (y) => y, run(cmdRollback, false))
    .command("firewall <action>", "firewall tools: `firewall analyze` reports other firewalls (Docker, iptables, nft tables) that would break bolt's traffic, read-only", (y) => files(y).positional("action", { choices: ["analyze"] }), run(cmdFirewallAnalyze, false))
    .demandCommand(1, "name a command: validate, plan, apply, destroy, show, rollback, firewall analyze")
    .strict()
    .help()
    .version(false)
    .wrap(null)
    .exitProcess(false)
    .fail((msg, e) => {
      throw e ?? new BoltError(msg);
    });
  // yargs renders and caches the full help text whenever a command runs (~50 ms of a no-op
  // plan); bolt's fail handler never prints help after a command started, so skip it.
  const usage = (parser as unknown as { getInternalMethods?: () => { getUsageInstance: () => { cacheHelpMessage?: () => void } } }).getInternalMethods?.().getUsageInstance();
  if (usage?.cacheHelpMessage) usage.cacheHelpMessage = () => {};
  try {
    await parser.parseAsync();
    return code;
  } catch (e) {
    return report(e);
  }
}

function report(e: unknown): number {
  if (e instanceof BoltError) {
    const lines = e.diagnostics.filter((d) => d.severity === "error").map(formatDiagnostic);
    err((lines.length ? lines.join("\n") : `error: ${e.message}`) + "\n");
    return e.exitCode;
  }
  err(`error: internal: ${(e as Error)?.stack ?? String(e)}\n`);
  return EXIT.ERROR;
}
