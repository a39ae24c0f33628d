// Which namespace file events can change the daemon's plans: those about a namespace its last
// pass named (an endpoint's, a file bolt owns in it, the target's own magic DNS file).
import { describe, expect, it } from "vitest";
import { namespaceOfPath, namespacesNamed } from "../../src/watch/netns-files-watch.js";

describe("namespace file events", () => {
  it("an event path names its namespace; /etc/hosts and the directories name none", () => {
    expect(namespaceOfPath("/run/netns/web")).toBe("web");
    expect(namespaceOfPath("/etc/netns/web")).toBe("web");
    expect(namespaceOfPath("/etc/netns/web/hosts")).toBe("web");
    expect(namespaceOfPath("/etc/netns")).toBeUndefined();
    expect(namespaceOfPath("/run/netns")).toBeUndefined();
    expect(namespaceOfPath("/etc/hosts")).toBeUndefined();
  });

  it("the namespaces a pass's resources name: an endpoint's netns, a resolver file's NS/FILE, a hosts file's path", () => {
    const named = namespacesNamed([
      { name: "web", spec: { type: "veth", netns: "p-web", bridge: "bolt-front" } },
      { name: "p-db/resolv.conf", spec: { text: "nameserver 10.0.0.1" } },
      { name: "magic_dns", spec: { file: "/etc/netns/me/hosts" } },
    ]);
    for (const ns of ["p-web", "p-db", "me"]) expect(named.has(ns), ns).toBe(true);
    expect(named.has("somebody-else")).toBe(false);
  });
});
