import { createHash, randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { BoltError } from "../../src/base/diagnostics.js";
import { formatIp4, parseCidr4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";

/**
 * The mesh's control store on etcd (design: shared/design/MULTIHOST.md §2.3, §2.5), the admin
 * side: `mesh init` writes the mesh's identity, `enroll` allocates an address by a
 * create-only transaction (no two nodes ever share one), `approve`/`revoke`/`expire`/`remove`
 * change a node's identity record with compare-and-swap, `list` reads the whole mesh at one
 * revision. Identity records carry no lease: a peer goes only by an explicit admin event.
 * The etcd3 client is loaded only here, only when a command talks to the store.
 */
export const SCHEMA = "v1";
export const prefixOf = (mesh: string) => `/bolt/${SCHEMA}/meshes/${mesh}/`;

export interface MeshMeta {
  v: 1;
  mesh_id: string;
  cidr4: string;
  listen_port: number;
  keepalive: number;
  created_at: string;
}

export type NodeState = "pending" | "approved" | "revoked";

export interface NodeRecord {
  v: 1;
  name: string;
  state: NodeState;
  /** pinned at approval; null until the node asks (key_policy "node": the node's request decides) */
  public_key: string | null;
  key_policy: "pinned" | "node";
  mesh_ip4: string;
  tags: string[];
  routes_allowed: string[];
  exit_node_allowed: boolean;
  expires_at?: string;
  approved_at?: string;
  enrolled_at: string;
}

/** What a node asks for (written by the node itself): its key, where it listens, what it offers. */
export interface NodeRequest {
  v: 1;
  public_key: string;
  hostname: string;
  endpoint?: string;
  tags: string[];
  routes: string[];
  exit_node: boolean;
  at: string;
}

export interface MeshSnapshot {
  revision: string;
  meta: MeshMeta;
  nodes: NodeRecord[];
  requests: Record<string, NodeRequest>;
  /** address → node name */
  ipam: Record<string, string>;
}

/**
 * The nodes a host configures as peers (MULTIHOST.md §2.4): approved, not expired, with a known
 * key (pinned, or the node's own request's when the admin left the key to it), not the host
 * itself. Identity decides, never liveness. Shared by the intent (peers) and the brake.
 */
export function admittedNodes(s: MeshSnapshot, self: string, now = Date.now()): { node: NodeRecord; key: string }[] {
  const out: { node: NodeRecord; key: string }[] = [];
  for (const n of s.nodes) {
    if (n.name === self || n.state !== "approved" || (n.expires_at && Date.parse(n.expires_at) <= now)) continue;
    const key = n.public_key ?? (n.key_policy === "node" ? s.requests[n.name]?.public_key : undefined);
    if (key) out.push({ node: n, key });
  }
  return out;
}

/** `etcd://h1:2379,h2:2379` → the client's endpoints. */
export function etcdEndpoints(url: string): string[] {
  const m = /^etcd:\/\/(.+)$/.exec(url);
  if (!m) throw new BoltError(`control server "${url}": expected etcd://HOST:PORT[,HOST:PORT…]`);
  const hosts = m[1]!.split(",").map((h) => h.trim().replace(/\/+$/, ""));
  for (const h of hosts) if (!/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(h)) throw new BoltError(`control server "${url}": "${h}" is not HOST:PORT`);
  return hosts.map((h) => `http://${h}`);
}

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export function checkNodeName(name: string): void {
  if (!NAME.test(name)) throw new BoltError(`node name "${name}": use lowercase letters, digits and "-" (a DNS label, at most 63 characters)`);
}

type Etcd = import("etcd3").Etcd3;

/** One store session; `close()` it. Every call has a deadline, so an unreachable store fails in seconds. */
export class MeshStore {
  private constructor(
    private readonly client: Etcd,
    readonly url: string,
    readonly mesh: string,
  ) {}

  static open(url: string, mesh: string, timeoutMs = 5000): MeshStore {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(mesh)) throw new BoltError(`mesh name "${mesh}": use lowercase letters, digits and "-"`);
    const { Etcd3 } = createRequire(import.meta.url)("etcd3") as typeof import("etcd3");
    const client = new Etcd3({
      hosts: etcdEndpoints(url),
      dialTimeout: timeoutMs,
      defaultCallOptions: () => ({ deadline: new Date(Date.now() + timeoutMs) }),
    });
    return new MeshStore(client, url, mesh);
  }

  close(): void {
    this.client.close();
  }

  private key(...parts: string[]): string {
    return prefixOf(this.mesh) + parts.join("/");
  }

  /** A store error as one line naming the store. */
  private async call<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof BoltError) throw e;
      const msg = (e as Error).message.split("\n")[0]!;
      const refused = /ECONNREFUSED (\S+?)[.:]?\s/.exec(`${msg} `)?.[1];
      const why = refused
        ? `unreachable (connection refused at ${refused})`
        : /unavailable|deadline|No connection/i.test(msg)
          ? `unreachable (${msg.replace(/\s*Resolution note:.*$/, "")})`
          : msg;
      throw new BoltError(`control server ${this.url}: ${what} failed: ${why}`);
    }
  }

  async meta(): Promise<MeshMeta | undefined> {
    const raw = await this.call("reading the mesh", () => this.client.get(this.key("meta")).string());
    return raw ? (JSON.parse(raw) as MeshMeta) : undefined;
  }

  private async requireMeta(): Promise<MeshMeta> {
    const m = await this.meta();
    if (!m) throw new BoltError(`control server ${this.url}: there is no mesh "${this.mesh}" (run \`bolt mesh init\` first)`);
    if (m.v !== 1) throw new BoltError(`control server ${this.url}: mesh "${this.mesh}" has schema v${m.v}; this bolt knows v1`);
    return m;
  }

  /** Creates the mesh (create-only: an existing mesh is never overwritten). */
  async init(cidr4: string, listenPort = 41641, keepalive = 25): Promise<MeshMeta> {
    const c = parseCidr4(cidr4);
    if (!c || c.hostBits || c.prefix > 30) throw new BoltError(`--cidr "${cidr4}": an IPv4 prefix without host bits, /30 or larger`);
    const meta: MeshMeta = { v: 1, mesh_id: randomUUID(), cidr4, listen_port: listenPort, keepalive, created_at: new Date().toISOString() };
    const r = await this.call("creating the mesh", () =>
      this.client
        .if(this.key("meta"), "Create", "==", 0)
        .then(
          this.client.put(this.key("meta")).value(JSON.stringify(meta)),
          this.client.put(this.key("policy")).value(JSON.stringify({ v: 1, acls: [], tests: [] })),
        )
        .commit(),
    );
    if (!r.succeeded) {
      const have = await this.requireMeta();
      throw new BoltError(
        `control server ${this.url}: mesh "${this.mesh}" already exists (mesh_id ${have.mesh_id}, ${have.cidr4}, created ${have.created_at}); nothing was changed`,
      );
    }
    return meta;
  }

  /**
   * A node's identity and address, in one transaction with its address claim. The first
   * candidate is a hash of the name; a taken address moves to the next. Enrolling a name that
   * exists is refused (its record and address stay as they are).
   */
  async enroll(
    name: string,
    o: { tags?: string[]; routes?: string[]; exitNode?: boolean; autoApprove?: boolean; expiresAt?: string } = {},
  ): Promise<NodeRecord> {
    checkNodeName(name);
    const meta = await this.requireMeta();
    const cidr = parseCidr4(meta.cidr4)!;
    for (const r of o.routes ?? []) {
      const c = parseCidr4(r);
      if (!c || c.hostBits) throw new BoltError(`--routes "${r}": an IPv4 prefix without host bits`);
    }
    const size = 2 ** (32 - cidr.prefix);
    const start = createHash("sha256").update(name).digest().readUInt32BE(0) % size;
    for (let i = 0; i < size; i++) {
      const addr = cidr.network + ((start + i) % size);
      if (!usable(addr, cidr)) continue;
      const ip = formatIp4(addr);
      const now = new Date().toISOString();
      const rec: NodeRecord = {
        v: 1,
        name,
        state: o.autoApprove ? "approved" : "pending",
        public_key: null,
        key_policy: o.autoApprove ? "node" : "pinned",
        mesh_ip4: ip,
        tags: (o.tags ?? []).map((t) => t.replace(/^tag:/, "")),
        routes_allowed: o.routes ?? [],
        exit_node_allowed: !!o.exitNode,
        ...(o.expiresAt ? { expires_at: o.expiresAt } : {}),
        ...(o.autoApprove ? { approved_at: now } : {}),
        enrolled_at: now,
      };
      const nodeKey = this.key("nodes", name);
      const ipKey = this.key("ipam", "v4", ip);
      const r = await this.call("enrolling", () =>
        this.client
          .if(nodeKey, "Create", "==", 0)
          .and(ipKey, "Create", "==", 0)
          .then(this.client.put(nodeKey).value(JSON.stringify(rec)), this.client.put(ipKey).value(name))
          .else(this.client.get(nodeKey))
          .commit(),
      );
      if (r.succeeded) return rec;
      const existing = r.responses[0]?.response_range?.kvs?.[0];
      if (existing) {
        const have = JSON.parse(existing.value.toString()) as NodeRecord;
        throw new BoltError(`node "${name}" is already enrolled (${have.state}, ${have.mesh_ip4}); \`bolt mesh remove ${name}\` first to enroll it again`);
      }
      // The address is someone else's: the next one.
    }
    throw new BoltError(`mesh "${this.mesh}": no free address left in ${meta.cidr4}`);
  }

  /** Changes a node's record with compare-and-swap (retried when another admin wrote in between). */
  private async update(name: string, what: string, change: (r: NodeRecord) => NodeRecord): Promise<NodeRecord> {
    checkNodeName(name);
    await this.requireMeta();
    const key = this.key("nodes", name);
    for (let attempt = 0; attempt < 10; attempt++) {
      const kv = await this.call(what, async () => (await this.client.get(key).exec()).kvs[0]);
      if (!kv) throw new BoltError(`node "${name}" is not enrolled in mesh "${this.mesh}"`);
      const next = change(JSON.parse(kv.value.toString()) as NodeRecord);
      const r = await this.call(what, () =>
        this.client
          .if(key, "Mod", "==", kv.mod_revision)
          .then(this.client.put(key).value(JSON.stringify(next)))
          .commit(),
      );
      if (r.succeeded) return next;
    }
    throw new BoltError(`node "${name}": ${what} kept racing with other writers; try again`);
  }

  /**
   * Admits a node. The key it is admitted with is the one given, else the one its request
   * shows now (the key that was reviewed is the key that gets pinned), else none yet: with
   * key_policy "node" its request's key will count.
   */
  async approve(name: string, publicKey?: string): Promise<NodeRecord> {
    const requested = publicKey
      ? undefined
      : await this.call("approving", async () => (await this.client.get(this.key("requests", name)).string()) ?? undefined);
    const key = publicKey ?? (requested ? ((JSON.parse(requested) as { public_key?: string }).public_key ?? undefined) : undefined);
    return this.update(name, "approving", (r) => {
      if (r.state === "revoked") throw new BoltError(`node "${name}" is revoked: enroll it again under a new name (its address stays reserved)`);
      const pin = key ? { public_key: key, key_policy: "pinned" as const } : { key_policy: "node" as const };
      return { ...r, state: "approved", approved_at: new Date().toISOString(), ...pin };
    });
  }

  revoke(name: string): Promise<NodeRecord> {
    return this.update(name, "revoking", (r) => ({ ...r, state: "revoked" }));
  }

  expire(name: string, at: string): Promise<NodeRecord> {
    return this.update(name, "setting the expiry", (r) => ({ ...r, expires_at: at }));
  }

  /** Deletes the identity; with `release` its address claim too (otherwise it stays reserved). */
  async remove(name: string, release: boolean): Promise<void> {
    checkNodeName(name);
    await this.requireMeta();
    const key = this.key("nodes", name);
    const kv = await this.call("removing", async () => (await this.client.get(key).exec()).kvs[0]);
    if (!kv) throw new BoltError(`node "${name}" is not enrolled in mesh "${this.mesh}"`);
    const rec = JSON.parse(kv.value.toString()) as NodeRecord;
    const ops = [this.client.delete().key(key), ...(release ? [this.client.delete().key(this.key("ipam", "v4", rec.mesh_ip4))] : [])];
    const r = await this.call("removing", () =>
      this.client
        .if(key, "Mod", "==", kv.mod_revision)
        .then(...ops)
        .commit(),
    );
    if (!r.succeeded) throw new BoltError(`node "${name}" changed while it was being removed; try again`);
  }

  /** The policy as stored (its source text) and the revision a compare-and-swap must see. */
  async policy(): Promise<{ text?: string; sha256?: string; modRevision: string }> {
    const kv = await this.call("reading the policy", async () => (await this.client.get(this.key("policy")).exec()).kvs[0]);
    if (!kv) return { modRevision: "0" };
    const v = JSON.parse(kv.value.toString()) as { text?: string; sha256?: string };
    return { text: v.text, sha256: v.sha256, modRevision: kv.mod_revision };
  }

  /** Writes the policy only if nobody changed it since `seen` (two admins never overwrite each other). */
  async setPolicy(text: string, seen: string): Promise<void> {
    const value = JSON.stringify({ v: 1, text, sha256: createHash("sha256").update(text).digest("hex"), set_at: new Date().toISOString() });
    const r = await this.call("writing the policy", () =>
      this.client
        .if(this.key("policy"), "Mod", "==", seen)
        .then(this.client.put(this.key("policy")).value(value))
        .commit(),
    );
    if (!r.succeeded) throw new BoltError(`the mesh's policy changed while this one was checked (it was at revision ${seen}); nothing was written — run again`);
  }

  /** The whole mesh at one revision (one range read of its prefix). */
  async snapshot(): Promise<MeshSnapshot> {
    const meta = await this.requireMeta();
    const prefix = prefixOf(this.mesh);
    const res = await this.call("reading the mesh", () => this.client.getAll().prefix(prefix).exec());
    const nodes: NodeRecord[] = [];
    const ipam: Record<string, string> = {};
    const requests: Record<string, NodeRequest> = {};
    for (const kv of res.kvs) {
      const k = kv.key.toString().slice(prefix.length);
      if (k.startsWith("nodes/")) nodes.push(JSON.parse(kv.value.toString()) as NodeRecord);
      else if (k.startsWith("ipam/v4/")) ipam[k.slice(8)] = kv.value.toString();
      else if (k.startsWith("requests/")) requests[k.slice(9)] = JSON.parse(kv.value.toString()) as NodeRequest;
    }
    nodes.sort((a, b) => a.name.localeCompare(b.name));
    return { revision: res.header.revision, meta, nodes, ipam, requests };
  }

  /** The node's own request (its key, endpoint, offers); unchanged requests are not rewritten. */
  async putRequest(name: string, req: Omit<NodeRequest, "v" | "at">): Promise<void> {
    checkNodeName(name);
    const key = this.key("requests", name);
    const have = await this.call("reading this node's request", () => this.client.get(key).string());
    const { at: _at, ...old } = have ? (JSON.parse(have) as NodeRequest) : ({} as NodeRequest);
    const next = { v: 1 as const, ...req };
    if (have && JSON.stringify(old) === JSON.stringify(next)) return;
    await this.call("writing this node's request", async () => {
      await this.client.put(key).value(JSON.stringify({ ...next, at: new Date().toISOString() }));
    });
  }
}

/** Not the network or broadcast address of the mesh, nor a .0 or .255 (some stacks treat those as special). */
function usable(addr: number, cidr: Cidr4): boolean {
  const last = addr & 255;
  const bcast = cidr.network + 2 ** (32 - cidr.prefix) - 1;
  return addr !== cidr.network && addr !== bcast && last !== 0 && last !== 255;
}
