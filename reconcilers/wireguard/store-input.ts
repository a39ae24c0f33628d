import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { BoltError } from "../../src/base/diagnostics.js";
import { loadFile } from "../../src/config/load.js";
import { readKeyFile } from "./keys.js";
import { MeshStore } from "./store.js";
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

export async function meshStoreInput(files: string[], write: boolean): Promise<{ wireguard: StoreView } | undefined> {
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
      if (snapshot.meta.mesh_id !== bundle.mesh_id)
        throw new BoltError(
          `${bundlePath}: the bundle is for mesh_id ${bundle.mesh_id}, but ${cs} holds mesh "${bundle.mesh}" with mesh_id ${snapshot.meta.mesh_id} (another or a re-created mesh): refusing it`,
        );
      return { wireguard: { snapshot, self: bundle.node } };
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
