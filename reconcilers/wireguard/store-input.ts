import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Diagnostic } from "../../src/base/diagnostics.js";
import { BoltError } from "../../src/base/diagnostics.js";
import { loadFile } from "../../src/config/load.js";
import { readKeyFile } from "./keys.js";
import { MeshStore, admittedNodes } from "./store.js";
import type { MeshSnapshot } from "./store.js";
import type { StoreView } from "./intent.js";

/**
 * Before the files are normalized: a mesh whose control_server is etcd:// is joined through
 * its bundle (`auth_key_file`, written by `bolt mesh enroll`). With `write` (apply) this host
 * first publishes its request (public key, endpoint, offers); then the mesh is read at one
 * revision and handed to the wireguard kind's intent as `external.wireguard`. A bundle for
 * another mesh, a readable bundle, another node's bundle or an unreachable store are
 * one-line errors, and nothing is applied.
 */
interface Bundle {
  v: number;
  control_server: string;
  mesh: string;
  mesh_id: string;
  node: string;
}

type Obj = Record<string, unknown>;

export interface StoreInputOptions {
  /** apply and watch: publish this host's request, and keep the snapshot for when the store is gone */
  write: boolean;
  /** where the last good snapshot is kept (the state dir, per target) */
  stateDir?: string;
  target?: string | null;
  /** the brake may be overridden (`--allow-destroy`) for a store that really lost most nodes */
  allowDestroy?: boolean;
  /** warnings for the caller to print (a stale snapshot) */
  warnings?: Diagnostic[];
}

/**
 * The brake (MULTIHOST.md §2.8): store-driven changes are refused when the store holds another
 * mesh (a wiped or foreign etcd), is behind the snapshot this host already applied (a restored
 * backup), or would remove more than half of this host's store peers at once.
 */
export function brake(last: MeshSnapshot | undefined, next: MeshSnapshot, self: string, allowDestroy = false): string | undefined {
  if (!last) return undefined;
  if (last.meta.mesh_id !== next.meta.mesh_id)
    return `the store now holds mesh_id ${next.meta.mesh_id}, not ${last.meta.mesh_id} (a wiped or another store): its changes are refused, the peers stay`;
  if (BigInt(next.revision) < BigInt(last.revision))
    return `the store is at revision ${next.revision}, behind the ${last.revision} already applied here (a restored backup?): its changes are refused, the peers stay`;
  const before = admittedNodes(last, self).map((a) => a.node.name);
  const after = new Set(admittedNodes(next, self).map((a) => a.node.name));
  const gone = before.filter((n) => !after.has(n));
  if (!allowDestroy && before.length >= 2 && gone.length * 2 > before.length)
    return `the store would remove ${gone.length} of this host's ${before.length} store peers at once (${gone.join(", ")}): refused (--allow-destroy applies it)`;
  return undefined;
}

const snapshotFile = (o: StoreInputOptions, mesh: string) => (o.stateDir ? join(o.stateDir, `mesh-${mesh}-${o.target || "_host"}.json`) : undefined);

function lastSnapshot(o: StoreInputOptions, mesh: string): (MeshSnapshot & { saved_at?: string }) | undefined {
  const f = snapshotFile(o, mesh);
  try {
    return f ? (JSON.parse(readFileSync(f, "utf8")) as MeshSnapshot & { saved_at?: string }) : undefined;
  } catch {
    return undefined;
  }
}

function saveSnapshot(o: StoreInputOptions, mesh: string, s: MeshSnapshot): void {
  const f = snapshotFile(o, mesh);
  if (!f) return;
  mkdirSync(dirname(f), { recursive: true, mode: 0o700 });
  writeFileSync(`${f}.tmp`, JSON.stringify({ ...s, saved_at: new Date().toISOString() }), { mode: 0o600 });
  renameSync(`${f}.tmp`, f);
}

export async function meshStoreInput(files: string[], o: StoreInputOptions): Promise<{ wireguard: StoreView } | undefined> {
  const write = o.write;
  for (const f of files) {
    let lf: ReturnType<typeof loadFile>;
    try {
      lf = loadFile(f);
    } catch {
      continue; // loadIntent reports it where it is
    }
    const data =
      lf.kind === "mesh" ? ((lf.data.meshvpn as Obj | undefined) ?? lf.data) : lf.kind === "boltfile" ? (lf.data.meshvpn as Obj | undefined) : undefined;
    if (!data) continue;
    const gw = ((data.ghostwire as Obj | undefined) ?? data) as Obj;
    const cs = typeof gw.control_server === "string" ? gw.control_server : "";
    if (!cs.startsWith("etcd://")) continue;
    const node = (data.node ?? {}) as Obj;
    if (typeof gw.auth_key_file !== "string")
      throw new BoltError(`${f}: control_server ${cs} needs auth_key_file: the bundle \`bolt mesh enroll\` wrote for this node`);
    const bundlePath = resolve(dirname(f), gw.auth_key_file);
    const bundle = readBundle(bundlePath);
    if (String(node.hostname ?? "") !== bundle.node)
      throw new BoltError(`${bundlePath}: this bundle is node "${bundle.node}", but ${f} says hostname = "${String(node.hostname ?? "")}"`);
    const last = lastSnapshot(o, bundle.mesh);
    const store = MeshStore.open(cs, bundle.mesh);
    try {
      if (write) {
        const key = typeof node.private_key_file === "string" ? readKeyFile(resolve(dirname(f), node.private_key_file), "private") : undefined;
        if (key?.ok && key.publicKey)
          await store.putRequest(bundle.node, {
            public_key: key.publicKey,
            hostname: bundle.node,
            ...(typeof node.endpoint === "string" ? { endpoint: node.endpoint } : {}),
            tags: ((node.tags ?? []) as unknown[]).map(String),
            routes: ((node.advertise_routes ?? []) as unknown[]).map(String),
            exit_node: node.exit_node === true,
          });
      }
      const snapshot = await store.snapshot();
      // The brake first: a host that applied this mesh before says what changed underneath it.
      const stop = brake(last, snapshot, bundle.node, o.allowDestroy);
      if (stop) throw new BoltError(`control server ${cs}: brake: ${stop}`);
      if (snapshot.meta.mesh_id !== bundle.mesh_id)
        throw new BoltError(
          `${bundlePath}: the bundle is for mesh_id ${bundle.mesh_id}, but ${cs} holds mesh "${bundle.mesh}" with mesh_id ${snapshot.meta.mesh_id} (another or a re-created mesh): refusing it`,
        );
      if (write) saveSnapshot(o, bundle.mesh, snapshot);
      return { wireguard: { snapshot, self: bundle.node } };
    } catch (e) {
      // The store is gone (not refused): the last snapshot this host applied, said loudly.
      if (last && e instanceof BoltError && /unreachable/.test(e.message)) {
        o.warnings?.push({
          severity: "warning",
          message: `mesh store: ${e.message}; using the snapshot of revision ${last.revision} saved ${last.saved_at ?? "earlier"} (stale)`,
        });
        return { wireguard: { snapshot: last, self: bundle.node } };
      }
      throw e;
    } finally {
      store.close();
    }
  }
  return undefined;
}

function readBundle(path: string): Bundle {
  let text: string;
  try {
    // Like the WireGuard keys: what identifies this node to the store is for root only.
    if (statSync(path).mode & 0o077) throw new BoltError(`${path}: the mesh bundle is readable by group or others; chmod 600 it`);
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof BoltError) throw e;
    throw new BoltError(`${path}: cannot read the mesh bundle (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const b = JSON.parse(text) as Bundle;
    if (b.v !== 1 || !b.mesh || !b.mesh_id || !b.node) throw new Error("fields missing");
    return b;
  } catch (e) {
    throw new BoltError(`${path}: not a mesh bundle from \`bolt mesh enroll\` (${(e as Error).message})`);
  }
}
