// Hardening: bolt's magic-DNS block goes into a hosts file the user already had and comes out
// again byte for byte — a file without a final newline, with trailing blank lines, an empty
// file — whatever apply + destroy did in between.
import { describe, expect, it } from "vitest";
import type { Change, PlanContext, Resource } from "../../src/core/resource.js";
import { hostsReconciler, splitBlock } from "../../reconcilers/hosts/index.js";

const ENTRIES = "100.64.0.1 host-a.mesh; 100.64.0.2 host-b.mesh";

/** What the reader would see in a file with this text (on the host: /etc/hosts). */
function live(text: string): Resource {
  const { block } = splitBlock(text);
  return {
    kind: "hosts",
    name: "magic_dns",
    id: "hosts:magic_dns",
    keys: [],
    spec: block ? { file: "/etc/hosts", entries: block.filter(Boolean).join("; ") } : {},
    data: { exists: true, text, base: text },
    deps: [],
    owned: !!block,
  };
}

const ctx = (l: Resource) => ({ target: null, live: new Map([[l.id, l]]), prepared: new Map() }) as unknown as PlanContext;

/** The text the op writes (`tee PATH` with stdin). */
function written(change: Change, l: Resource): string {
  const ops = hostsReconciler.render(change, ctx(l));
  const tee = ops.find((o) => o.args[0] === "tee");
  expect(tee, "a tee op").toBeDefined();
  return tee!.stdin!;
}

describe("hosts block: apply then destroy restores the file byte for byte", () => {
  for (const [name, original] of Object.entries({
    "a normal file": "127.0.0.1 localhost\n::1 localhost\n",
    "no final newline": "127.0.0.1 localhost",
    "trailing blank lines": "127.0.0.1 localhost\n\n\n",
    "an empty file": "",
    "only blank lines": "\n\n",
  })) {
    it(name, () => {
      const before = live(original);
      const desired: Resource = {
        kind: "hosts",
        name: "magic_dns",
        id: "hosts:magic_dns",
        keys: [],
        spec: { file: "/etc/hosts", entries: ENTRIES },
        deps: [],
        owned: true,
      };
      const applied = written(
        { id: desired.id, kind: "hosts", name: "magic_dns", action: "create", after: desired, before, changed: ["entries"], forcedBy: [] },
        before,
      );
      expect(applied.startsWith(original)).toBe(true);
      expect(splitBlock(applied).block?.filter(Boolean).join("; ")).toBe(ENTRIES);
      // An update keeps everything outside the block as it is.
      const afterApply = live(applied);
      const updated = written(
        {
          id: desired.id,
          kind: "hosts",
          name: "magic_dns",
          action: "update",
          after: { ...desired, spec: { ...desired.spec, entries: "100.64.0.1 host-a.mesh" } },
          before: afterApply,
          changed: ["entries"],
          forcedBy: [],
        },
        afterApply,
      );
      expect(splitBlock(updated).before).toBe(splitBlock(applied).before);
      const restored = written(
        { id: desired.id, kind: "hosts", name: "magic_dns", action: "delete", before: afterApply, changed: [], forcedBy: [] },
        afterApply,
      );
      expect(restored).toBe(original);
    });
  }
});
