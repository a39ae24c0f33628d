// docker-user: on a Docker host (iptables FORWARD policy DROP, a DOCKER-USER chain) with
// docker_conflict_resolution = true, two marked ACCEPT rules per bridge in DOCKER-USER. Without
// the chain nothing is planned. Create, delete, destroy.
import { describe, expect, it } from "vitest";
import { converge, describeTransition, intentOf, newWorld, planChanges, planOn, writeConfigs } from "../helpers/pipeline.js";
import type { Desired } from "../helpers/pipeline.js";

const T = "bolt-t-kinds";
const TWO = `
[networks.front]
subnet = "10.81.0.0/24"

[networks.lab]
subnet = "10.82.0.0/24"

[firewall]
docker_conflict_resolution = true
`;
const ONE = TWO.replace('[networks.lab]\nsubnet = "10.82.0.0/24"\n', "");

const want = (text: string) => (): Desired => ({ intent: intentOf(writeConfigs({ "bolt-network.toml": text })) });
const docker = () => newWorld(T, (k) => void k.dockerHost(T));
const from = (text: string) => async () => {
  const w = await docker();
  await converge(w, want(text)());
  return w;
};
// A rollback or a recovery from the journal restores DOCKER-USER exactly: every op's undo is the
// whole chain as read, one iptables-restore (an -I would put a deleted rule back at position 1,
// and undoing a -D that never took effect would duplicate the rule). A real foreign rule stays
// where it was: see "a foreign rule below bolt's" below.
const dockerUser = (w: { ns(n: string): { iptables: { name: string; rules: string[] }[] | null } }) =>
  w.ns(T).iptables!.find((c) => c.name === "DOCKER-USER")!.rules;

describe("docker-user", () => {
  describeTransition("create: ACCEPTs for two bridges", {
    kind: "docker-user",
    before: docker,
    to: want(TWO),
    after: (k) => {
      expect(dockerUser(k)).toEqual([
        '-o bolt-lab -m comment --comment "bolt:bolt-lab" -j ACCEPT',
        '-i bolt-lab -m comment --comment "bolt:bolt-lab" -j ACCEPT',
        '-o bolt-front -m comment --comment "bolt:bolt-front" -j ACCEPT',
        '-i bolt-front -m comment --comment "bolt:bolt-front" -j ACCEPT',
        "-j RETURN",
      ]);
    },
  });

  describeTransition("create: a network added to a resolved host", {
    kind: "docker-user",
    before: from(ONE),
    to: want(TWO),
  });

  describeTransition("delete: a network removed", {
    kind: "docker-user",
    before: from(TWO),
    to: want(ONE),
    after: (k) => expect(dockerUser(k).filter((r) => r.includes("bolt-lab"))).toEqual([]),
  });

  describeTransition("delete beside a foreign rule: a foreign rule below bolt's", {
    kind: "docker-user",
    before: async () => {
      const w = await from(TWO)();
      // Another tool's rule between bolt's two bridges: every rollback must leave it there.
      dockerUser(w.kernel).splice(2, 0, "-s 192.0.2.9/32 -j DROP");
      return w;
    },
    to: want(ONE),
    after: (k) =>
      expect(dockerUser(k)).toEqual([
        "-s 192.0.2.9/32 -j DROP",
        '-o bolt-front -m comment --comment "bolt:bolt-front" -j ACCEPT',
        '-i bolt-front -m comment --comment "bolt:bolt-front" -j ACCEPT',
        "-j RETURN",
      ]),
  });

  describeTransition("destroy", {
    kind: "docker-user",
    before: from(TWO),
    to: () => ({ ...want(TWO)(), destroy: true }),
    after: (k) => expect(dockerUser(k)).toEqual(["-j RETURN"]),
  });

  it("plans nothing where there is no DOCKER-USER chain", async () => {
    const plan = await planOn(newWorld(T), want(TWO)());
    expect(planChanges(plan).filter((c) => c.includes("docker-user"))).toEqual([]);
  });
});
