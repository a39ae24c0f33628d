// Recorded kernel output (fixtures/ip/, see its README) and a ScriptedRunner responder
// that serves it, so parsers and readers run on what iproute2 really prints.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ok } from "../../../src/exec/scripted-runner.js";
import type { Responder } from "../../../src/exec/scripted-runner.js";

export const IPROUTE2_DIR = fileURLToPath(new URL("../../../fixtures/ip/iproute2-6.1/", import.meta.url));
/** The namespace the fixtures were recorded in, and the endpoint namespace prefix. */
export const FX_NS = "bolt-t-fx";
export const FX_PREFIX = "bolt-t-fx-";

export function fixtureText(name: string): string {
  return readFileSync(IPROUTE2_DIR + name, "utf8");
}

export function fixtureJson<T>(name: string): T {
  return JSON.parse(fixtureText(name)) as T;
}

/** Answers one exact argv (joined by spaces) with a fixture file's contents. */
export function serve(argv: string, fixture: string): Responder {
  return (call) => (call.argv.join(" ") === argv ? ok(fixtureText(fixture)) : undefined);
}
