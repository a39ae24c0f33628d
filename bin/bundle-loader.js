// Loads the bundled CLI (dist/cli/bolt.cjs) the way require() would, but compiled with the V8
// code cache the build wrote next to it (dist/cli/bolt.cjs.cache, see scripts/bundle.mjs).
// Node 20 has no module.enableCompileCache() (Node 22.1+); vm.Script's cachedData is what it
// offers, for scripts only, hence a CommonJS bundle. With the cache, V8 deserializes the
// bytecode of every function the build's warm-up ran instead of parsing and compiling them.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

export const BUNDLE = fileURLToPath(new URL("../dist/cli/bolt.cjs", import.meta.url));
export const CODE_CACHE = `${BUNDLE}.cache`;
/** The cache file starts with the SHA-1 of the source it was made from. */
const DIGEST_BYTES = 20;

/**
 * The bundle's exports, and its code cache as compiled so far (the build writes it after a
 * warm-up, so it holds the functions the commands ran, not only the top level). Before using a
 * cache V8 checks only the source's length, its own version and its flags, so a cache is used
 * only when it was made from exactly this source: a stale or foreign one (another build, a
 * hand-edited bundle) is ignored and the source is compiled as usual.
 */
export function loadCli({ useCache = true, bundle = BUNDLE, codeCache = `${bundle}.cache` } = {}) {
  const source = readFileSync(bundle);
  let cachedData;
  if (useCache) {
    try {
      const cache = readFileSync(codeCache);
      if (cache.subarray(0, DIGEST_BYTES).equals(createHash("sha1").update(source).digest())) cachedData = cache.subarray(DIGEST_BYTES);
    } catch {
      // no cache (a build without one): compile from source
    }
  }
  // The CommonJS wrapper on a line of its own, so the bundle's line and column numbers in stack traces are the file's.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {\n${source.toString("utf8")}\n})`, {
    filename: bundle,
    lineOffset: -1,
    cachedData,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  return {
    cli: module.exports,
    cacheUsed: cachedData !== undefined && !script.cachedDataRejected,
    /** The cache file's bytes for this script as compiled so far: the source's digest, then V8's data. */
    codeCache: () => Buffer.concat([createHash("sha1").update(source).digest(), script.createCachedData()]),
  };
}
