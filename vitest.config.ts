import { defineConfig } from "vitest/config";

// Unit and golden tests run in parallel; integration tests share the kernel's global
// namespace list and run one file at a time, with generous timeouts (real `ip` work).
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts", "test/golden/**/*.test.ts"] } },
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
