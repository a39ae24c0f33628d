// The store's TLS, the pure parts: what a refusal from etcd or its TLS handshake says, and the
// admin's --ca/--cert/--key flags (all three or none). Real certificates: mesh-store-rbac.test.ts.
import { beforeEach, describe, expect, it } from "vitest";
import { refusalOf } from "../../reconcilers/wireguard/store-tls.js";
import type { StoreTls } from "../../reconcilers/wireguard/store-tls.js";
import { adminTlsFrom, certDays } from "../../src/cli/mesh-admin-tls.js";

const node: StoreTls = { ca: "", cert: "", key: "", user: "web-1", as: "node" };
const admin: StoreTls = { ...node, user: "bolt-admin", as: "admin" };
const hint = "bolt-mesh-lab-admin for the mesh's keys, root for users and roles";

describe("mesh store TLS", () => {
  // The flags fall back to these; the runner's environment must not fill them in.
  beforeEach(() => {
    for (const k of ["BOLT_ETCD_CA", "BOLT_ETCD_CERT", "BOLT_ETCD_KEY", "BOLT_ETCD_CA_KEY"]) delete process.env[k];
  });
  it("permission denied says why, by who connects", () => {
    const denied = "7 PERMISSION_DENIED: etcdserver: permission denied";
    expect(refusalOf(denied, node, hint)).toBe("permission denied (this node's etcd user is gone: revoked?)");
    expect(refusalOf(denied, admin, hint)).toBe(`permission denied (etcd user "bolt-admin" lacks the role for this: ${hint})`);
    expect(refusalOf(denied, undefined, hint)).toMatch(/auth enabled: give --ca, --cert and --key/);
  });
  it("a refused TLS handshake is a refusal, never 'unreachable' (a host does not fall back to its snapshot for it)", () => {
    const bad =
      "14 UNAVAILABLE: No connection established. Last error: 80ACCA62E57F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42";
    expect(refusalOf(bad, node, hint)).toBe("the store refused the TLS client certificate (CN=web-1): it is not signed by a CA the store trusts");
    expect(refusalOf("14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate.", node, hint)).toBe(
      "its server certificate is not signed by the CA given (the bundle's ca)",
    );
    expect(refusalOf("14 UNAVAILABLE: No connection established. Last error: Failed to connect", node, hint)).toBeUndefined();
    expect(refusalOf("deadline exceeded", undefined, hint)).toBeUndefined();
  });
  it("--ca, --cert and --key go together; a WireGuard key given to --key points to --public-key", () => {
    expect(adminTlsFrom({})).toBeUndefined();
    expect(() => adminTlsFrom({ ca: "/x/ca.pem" })).toThrow("the store's TLS credentials are --ca, --cert and --key together (missing --cert, --key)");
    expect(() => adminTlsFrom({ key: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=" })).toThrow(/pin a WireGuard public key with --public-key/);
    expect(() => adminTlsFrom({ ca: "/nonexistent/ca.pem", cert: "/nonexistent/c.pem", key: "/nonexistent/k.pem" })).toThrow(
      "--ca /nonexistent/ca.pem: cannot read it (ENOENT)",
    );
  });
  it("a node's certificate lasts as long as its enrollment, else a year", () => {
    expect(certDays(undefined)).toBe(365);
    expect(certDays(new Date(Date.now() + 30 * 86_400_000 - 1000).toISOString())).toBe(30);
    expect(certDays(new Date(Date.now() + 1000).toISOString())).toBe(1);
  });
});
