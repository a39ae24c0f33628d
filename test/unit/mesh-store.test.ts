// The etcd store's pure parts (issue 10): the control-server URL and node names.
import { describe, expect, it } from "vitest";
import { checkNodeName, etcdEndpoints, prefixOf } from "../../reconcilers/wireguard/store.js";

describe("mesh store", () => {
  it("etcd:// with one or more members; anything else is a one-line error", () => {
    expect(etcdEndpoints("etcd://10.0.0.11:2379,10.0.0.12:2379, etcd-3.lan:2379")).toEqual([
      "http://10.0.0.11:2379",
      "http://10.0.0.12:2379",
      "http://etcd-3.lan:2379",
    ]);
    expect(etcdEndpoints("etcd://[2001:db8::1]:2379")).toEqual(["http://[2001:db8::1]:2379"]);
    expect(() => etcdEndpoints("https://x:2379")).toThrow(/expected etcd:\/\/HOST:PORT/);
    expect(() => etcdEndpoints("etcd://host")).toThrow(/"host" is not HOST:PORT/);
  });
  it("node names are DNS labels; keys live under /bolt/v1/meshes/<mesh>/", () => {
    for (const ok of ["web-1", "a", "n0"]) expect(() => checkNodeName(ok)).not.toThrow();
    for (const bad of ["Web", "-x", "x-", "a_b", "a".repeat(64), ""]) expect(() => checkNodeName(bad), bad).toThrow(/node name/);
    expect(prefixOf("home")).toBe("/bolt/v1/meshes/home/");
  });
});
