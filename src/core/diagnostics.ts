// Diagnostics live in the lowest layer (src/base) so that exec/ and state/ can raise them
// without importing the core; the core keeps this path for its own modules.
export * from "../base/diagnostics.js";
