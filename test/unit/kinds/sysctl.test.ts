// sysctl: only the keys listed, written inside the target; ownership is the store's record of
// the value before bolt, which delete writes back. Create, update, delete, destroy.
import { describe, expect } from "vitest";
import { converge, describeTransition, intentOf, newWorld, writeConfigs } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";

const T = "bolt-t-kinds";
const TWO = `
[sysctl]
"net.ipv4.ip_default_ttl" = 63
"net.ipv4.ip_local_port_range" = "20000 40000"
`;
const want = (text: string) => (): Desired => ({ intent: intentOf(writeConfigs({ "bolt-network.toml": text })) });
const from = (text: string) => async () => {
  const w = newWorld(T);
  await converge(w, want(text)());
  return w;
};

describe("sysctl", () => {
  describeTransition("create: two keys (one multi-valued)", {
    kind: "sysctl",
    before: () => newWorld(T),
    to: want(TWO),
    changes: ["create sysctl:net.ipv4.ip_default_ttl", "create sysctl:net.ipv4.ip_local_port_range"],
    after: (k) => {
      expect(k.ns(T).sysctl["net.ipv4.ip_default_ttl"]).toBe("63");
      expect(k.ns(T).sysctl["net.ipv4.ip_local_port_range"]).toBe("20000\t40000");
      expect(k.ns(null).sysctl["net.ipv4.ip_default_ttl"]).toBe("64"); // per namespace: the host's is untouched
    },
  });

  describeTransition("update: both values changed", {
    kind: "sysctl",
    before: from(TWO),
    to: want(TWO.replace("63", "100").replace("20000 40000", "30000 50000")),
    changes: ["update sysctl:net.ipv4.ip_default_ttl", "update sysctl:net.ipv4.ip_local_port_range"],
  });

  describeTransition("delete: one key no longer listed (its value before bolt is written back)", {
    kind: "sysctl",
    // two keys are deleted so that one's undo is needed when the other's write fails
    before: from(TWO + '"net.ipv4.tcp_syncookies" = 0\n'),
    to: want('[sysctl]\n"net.ipv4.tcp_syncookies" = 0\n'),
    changes: ["delete sysctl:net.ipv4.ip_local_port_range", "delete sysctl:net.ipv4.ip_default_ttl"],
    after: (k) => {
      expect(k.ns(T).sysctl["net.ipv4.ip_default_ttl"]).toBe("64");
      expect(k.ns(T).sysctl["net.ipv4.ip_local_port_range"]).toBe("32768\t60999");
    },
  });

  describeTransition("destroy", {
    kind: "sysctl",
    before: from(TWO),
    to: () => ({ ...want(TWO)(), destroy: true }),
    changes: ["delete sysctl:net.ipv4.ip_local_port_range", "delete sysctl:net.ipv4.ip_default_ttl"],
  });
});
