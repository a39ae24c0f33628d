import { existsSync, statSync, statfsSync } from "node:fs";
import type { CommandRunner } from "../exec/runner.js";
import { CNI_CODE, CniError } from "./errors.js";

/**
 * A bolt-owned name for the container's network namespace.
 *
 * The endpoint kind addresses a namespace by name: `ip link add … peer … netns NAME` moves the
 * veth's far end into it and `ip -n NAME` configures the inside. A runtime hands CNI a path
 * instead (/proc/PID/ns/net, or its own /var/run/netns/X). Kernel fact: a namespace is pinned
 * by any open file or bind mount of its nsfs inode, and an `ip netns` name is nothing but such
 * a bind mount on a file under /run/netns. So the plugin bind-mounts CNI_NETNS onto
 * /run/netns/<endpoint's namespace name>: the container's own namespace gets a name bolt can
 * plan with (no new namespace, no copy), DEL removes only that name (`ip netns del` is umount
 * + unlink: the namespace lives on while the container or its runtime still holds it). The
 * mount also keeps the namespace — and so the veth inside — alive until DEL after the container
 * exits, which is what lets DEL remove a veth whose container is already gone.
 */
export const NETNS_DIR = "/run/netns";
// statfs(2) f_type of the filesystem every /proc/PID/ns/* file (and its bind mounts) lives on.
const NSFS_MAGIC = 0x6e736673;

const aliasPath = (name: string) => `${NETNS_DIR}/${name}`;

function sameInode(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** Whether NAME already names the namespace at PATH (a repeated ADD). */
export function aliasOf(name: string, path: string): boolean {
  return sameInode(aliasPath(name), path);
}

/** Whether NAME is a mounted namespace name (one DEL has not removed yet). */
export function aliasExists(name: string): boolean {
  try {
    return existsSync(aliasPath(name)) && statfsSync(aliasPath(name)).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/** CNI_NETNS must be a namespace file: refused before anything is touched. */
export function checkNetnsPath(path: string): void {
  let type: number;
  try {
    type = statfsSync(path).type;
  } catch (e) {
    throw new CniError(
      CNI_CODE.invalidEnv,
      `CNI_NETNS ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      "the container's network namespace must exist at ADD and CHECK",
    );
  }
  if (type !== NSFS_MAGIC) throw new CniError(CNI_CODE.invalidEnv, `CNI_NETNS ${path} is not a namespace file (not on nsfs)`);
}

async function must(runner: CommandRunner, argv: string[]): Promise<void> {
  const r = await runner.run(argv);
  if (r.code !== 0) throw new CniError(CNI_CODE.engine, `${argv.join(" ")} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
}

/** Names the namespace at PATH `name` (idempotent: a name already bound to it is kept). */
export async function bindAlias(runner: CommandRunner, name: string, path: string): Promise<void> {
  if (aliasOf(name, path)) return;
  if (aliasExists(name))
    throw new CniError(
      CNI_CODE.engine,
      `${aliasPath(name)} already names another namespace`,
      "this container id is attached in another namespace: DEL its attachments first",
    );
  await must(runner, ["mkdir", "-p", NETNS_DIR]);
  // mount(2) needs an existing file to bind onto, as `ip netns add` creates one.
  await must(runner, ["touch", aliasPath(name)]);
  await must(runner, ["mount", "--bind", path, aliasPath(name)]);
}

/** Removes the name (never the namespace): nothing to do when it is gone already. */
export async function removeAlias(runner: CommandRunner, name: string): Promise<void> {
  if (!existsSync(aliasPath(name))) return;
  await must(runner, ["ip", "netns", "del", name]);
}
