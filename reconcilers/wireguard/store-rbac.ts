import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { BoltError } from "../../src/base/diagnostics.js";

/**
 * The etcd users and roles of a mesh (MULTIHOST.md §2.6). etcd has no create-only permission
 * and no rule on values, so a node may write only its own two keys, never `nodes/`, `ipam/`
 * or `policy`: with write access to `ipam/` it could delete another node's claim and take its
 * address. The node's permissions are single keys, not prefixes, so `requests/web-1` does not
 * cover `requests/web-10`. etcd lets only users with its `root` role manage users and roles.
 *
 * Every step is idempotent: an existing role or user, or a missing one on removal, is fine,
 * so an interrupted enroll or revoke can simply be run again.
 */
type Etcd = import("etcd3").Etcd3;
type Etcd3Module = typeof import("etcd3");

export const adminRole = (mesh: string) => `bolt-mesh-${mesh}-admin`;
export const nodeRole = (mesh: string, node: string) => `bolt-node-${mesh}-${node}`;

const etcd3 = (): Etcd3Module => createRequire(import.meta.url)("etcd3") as Etcd3Module;

/** Runs `f`; an error of class `ok` (e.g. "role name already exists") counts as done. */
async function unless(ok: keyof Etcd3Module, f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (!(e instanceof (etcd3()[ok] as new () => Error))) throw e;
  }
}

/** Role bolt-mesh-<mesh>-admin: readwrite on the mesh's prefix (approve, expire, list, policy). */
export async function ensureAdminRole(client: Etcd, mesh: string, prefix: string): Promise<void> {
  const role = adminRole(mesh);
  await unless("EtcdRoleExistsError", () => client.role(role).create());
  await client.role(role).grant({ permission: "Readwrite", range: etcd3().Range.prefix(prefix) });
}

/**
 * The roles of etcd user `node`, or undefined when there is none. A user that has roles
 * other than this node's in this mesh is someone else's (a node of that name in another
 * mesh on the same cluster, or `root`): bolt never shares or deletes it.
 */
async function foreignRoles(client: Etcd, mesh: string, node: string): Promise<string[] | undefined> {
  try {
    const { roles } = await client.auth.userGet({ name: node });
    return (roles ?? []).filter((r) => r !== nodeRole(mesh, node));
  } catch (e) {
    if (e instanceof etcd3().EtcdUserNotFoundError) return undefined;
    throw e;
  }
}

/** Refuses a name whose etcd user belongs to something else (checked before the node is enrolled). */
export async function checkNodeUserFree(client: Etcd, mesh: string, node: string): Promise<void> {
  const foreign = await foreignRoles(client, mesh, node);
  if (foreign?.length)
    throw new BoltError(
      `etcd user "${node}" already exists with role(s) ${foreign.join(", ")} (another mesh's node of that name, or not bolt's): the node would share it; enroll it under another name`,
    );
}

/**
 * User `node` without a password (etcd takes the certificate's CN as the user) and role
 * bolt-node-<mesh>-<node>: read on the mesh, readwrite on exactly its request and status.
 */
export async function ensureNodeUser(client: Etcd, mesh: string, node: string, prefix: string): Promise<void> {
  const role = nodeRole(mesh, node);
  // etcd3's User.create always sends a password; a CN-only user needs options.no_password (etcd ≥ 3.4).
  await unless("EtcdUserExistsError", () => client.auth.userAdd({ name: node, options: { no_password: true } }));
  await unless("EtcdRoleExistsError", () => client.role(role).create());
  await client.role(role).grant([
    { permission: "Read", range: etcd3().Range.prefix(prefix) },
    { permission: "Readwrite", key: `${prefix}requests/${node}` },
    { permission: "Readwrite", key: `${prefix}status/${node}` },
  ]);
  await client.user(node).addRole(role);
}

/**
 * Takes the node's access away: its user is deleted (its next request is refused), and its
 * role. A user that also has other roles is not deleted; only this role is taken from it.
 */
export async function dropNodeUser(client: Etcd, mesh: string, node: string): Promise<void> {
  const role = nodeRole(mesh, node);
  const foreign = await foreignRoles(client, mesh, node);
  if (foreign && !foreign.length) await unless("EtcdUserNotFoundError", () => client.user(node).delete());
  else if (foreign) await unless("EtcdRoleNotGrantedError", () => client.user(node).removeRole(role));
  await unless("EtcdRoleNotFoundError", () => client.role(role).delete());
}

/**
 * Whether the cluster enforces auth. etcd 3.4 has no AuthStatus call; Authenticate with a
 * name that cannot exist tells: "not enabled" when off, "authentication failed" when on.
 * Undefined when it cannot tell.
 */
export async function authEnabled(client: Etcd): Promise<boolean | undefined> {
  try {
    const s = await client.auth.authStatus();
    if (typeof s.enabled === "boolean") return s.enabled;
  } catch {
    /* etcd < 3.5 */
  }
  try {
    await client.auth.authenticate({ name: `bolt-auth-probe-${randomUUID()}`, password: "-" });
    return true;
  } catch (e) {
    if (/authentication is not enabled/.test((e as Error).message)) return false;
    if (e instanceof etcd3().EtcdAuthenticationFailedError) return true;
    return undefined;
  }
}
