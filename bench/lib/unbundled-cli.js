// bin/bolt.js over tsc's per-module output instead of the minified bundle: same code, but a
// CPU profile names every function and file (bench/profile.js --unbundled).
import { main } from "../../dist/src/cli/main.js";
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
