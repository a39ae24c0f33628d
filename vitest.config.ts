import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

// Unit tests must not leave runtime files (locks, sysctl copies) in the machine's /run/bolt.
const UNIT_RUN_DIR = join(tmpdir(), `bolt-unit-run-${process.pid}`);

// Unit and golden tests run in parallel; integration tests share the kernel's global
// namespace list and run one file at a time, with generous timeouts (real `ip` work).
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts", "test/golden/**/*.test.ts"], env: { BOLT_RUN_DIR: UNIT_RUN_DIR } } },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
