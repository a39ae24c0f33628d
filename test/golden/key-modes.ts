import { chmodSync, readdirSync } from "node:fs";
import { join } from "node:path";

/**
 * Key files (`*.key`, `*.psk`, anywhere in a case folder) must be 0600 or the loader refuses
 * them; git keeps no such mode, so every test that loads a case sets it (in any test order).
 */
export function keyModes(dir: string): void {
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && /\.(key|psk)$/.test(e.name)) chmodSync(join(e.parentPath, e.name), 0o600);
  }
}
