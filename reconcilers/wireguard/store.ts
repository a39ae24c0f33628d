import { createHash, randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { BoltError } from "../../src/base/diagnostics.js";
import { formatIp4, parseCidr4 } from "../../src/core/ipv4.js";
import type { Cidr4 } from "../../src/core/ipv4.js";
import { adminRole, checkNodeUserFree, dropNodeUser, ensureAdminRole, ensureNodeUser, authEnabled as probeAuth } from "./store-rbac.js";
import { quietIpSniWarning, refusalOf } from "./store-tls.js";
import type { StoreTls } from "./store-tls.js";

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
  /** seconds a node's status lease outlives its last keepalive (default 30) */
  status_ttl?: number;
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

/**
 * A node's liveness and endpoint hints (written by the node under a lease: the key exists only
 * while the node keeps it alive). Feeds `mesh list`, endpoint choice and the HA primary — never
 * whether a peer exists.
 */
export interface NodeStatus {
  v: 1;
  endpoints: string[];
  listen_port: number;
  boot_id: string;
  started_at: string;
  applied_policy_rev?: string;
}

export interface MeshSnapshot {
  revision: string;
  meta: MeshMeta;
  nodes: NodeRecord[];
  requests: Record<string, NodeRequest>;
  /** address → node name */
  ipam: Record<string, string>;
  /** the policy's source text (HuJSON) and the revision it was written at; absent: no policy set, no filter */
  policy?: { text: string; mod_revision: string };
  /** the nodes whose status lease was alive at this revision */
  status?: Record<string, NodeStatus>;
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

export interface ApproveOptions {
  /** pin this key rather than the one the node's request shows */
  publicKey?: string;
  /** announced routes the node may carry (added to routes_allowed) */
  routes?: string[];
  /** allow its exit-node offer */
  exitNode?: boolean;
}

/** One store session; `close()` it. Every call has a deadline, so an unreachable store fails in seconds. */
export class MeshStore {
  private constructor(
    private readonly client: Etcd,
    readonly url: string,
    readonly mesh: string,
    /** TLS client credentials (RBAC mode); none: open mode, plain http, every node trusts every node */
    private readonly tls?: StoreTls,
  ) {}

  /** With `tls`, every member is reached over https and every request runs as the certificate's CN. */
  static open(url: string, mesh: string, timeoutMs = 5000, tls?: StoreTls): MeshStore {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(mesh)) throw new BoltError(`mesh name "${mesh}": use lowercase letters, digits and "-"`);
    const { Etcd3 } = createRequire(import.meta.url)("etcd3") as typeof import("etcd3");
    if (tls) quietIpSniWarning();
    const client = new Etcd3({
      hosts: etcdEndpoints(url).map((h) => (tls ? h.replace(/^http:/, "https:") : h)),
      ...(tls ? { credentials: { rootCertificate: Buffer.from(tls.ca), certChain: Buffer.from(tls.cert), privateKey: Buffer.from(tls.key) } } : {}),
      dialTimeout: timeoutMs,
      // Streams (lease keepalives, watches) live as long as the session: no deadline for them.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: new Date(Date.now() + timeoutMs) }),
    });
    return new MeshStore(client, url, mesh, tls);
  }

  close(): void {
    // A kept status lease lapses on its own after its TTL (a restart must not flap the node offline).
    this.lease?.release();
    void this.watcher?.then((w) => w?.cancel()).catch(() => {});
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
      const refusal = refusalOf(msg, this.tls, `${adminRole(this.mesh)} for the mesh's keys, root for users and roles`);
      if (refusal) throw new BoltError(`control server ${this.url}: ${what} refused: ${refusal}`);
      const refused = /ECONNREFUSED (\S+?)[.:]?\s/.exec(`${msg} `)?.[1];
      const why = refused
        ? `unreachable (connection refused at ${refused})`
        : /unavailable|deadline|No connection|circuit breaker is open/i.test(msg)
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
    return checkMeta(await this.meta(), this.url, this.mesh);
  }

  /**
   * Creates the mesh (create-only: an existing mesh is never overwritten). With TLS, first its
   * admin role (idempotent, so a mesh never exists without it and init can repair it).
   */
  async init(cidr4: string, o: { listenPort?: number; keepalive?: number; statusTtl?: number } = {}): Promise<MeshMeta> {
    const c = parseCidr4(cidr4);
    if (!c || c.hostBits || c.prefix > 30) throw new BoltError(`--cidr "${cidr4}": an IPv4 prefix without host bits, /30 or larger`);
    if (this.tls) await this.call(`creating role ${adminRole(this.mesh)}`, () => ensureAdminRole(this.client, this.mesh, prefixOf(this.mesh)));
    const ttl = o.statusTtl ?? 30;
    if (!Number.isInteger(ttl) || ttl < 2 || ttl > 3600) throw new BoltError(`--status-ttl ${ttl}: whole seconds, 2 to 3600`);
    const meta: MeshMeta = {
      v: 1,
      mesh_id: randomUUID(),
      cidr4,
      listen_port: o.listenPort ?? 41641,
      keepalive: o.keepalive ?? 25,
      status_ttl: ttl,
      created_at: new Date().toISOString(),
    };
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
        `control server ${this.url}: mesh "${this.mesh}" already exists (mesh_id ${have.mesh_id}, ${have.cidr4}, created ${have.created_at}); nothing was changed${this.tls ? ` (its role ${adminRole(this.mesh)} is in place)` : ""}`,
      );
    }
    return meta;
  }

  /**
   * A node's identity and address, in one transaction with its address claim. The first
   * candidate is a hash of the name; a taken address moves to the next. Enrolling a name that
   * exists is refused (its record and address stay as they are). With TLS the node also gets
   * its etcd user and role (store-rbac.ts); if that fails, the enrollment is undone.
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
    // Before anything is written: a user of that name that is not this node's is never shared.
    if (this.tls) await this.call(`checking etcd user "${name}"`, () => checkNodeUserFree(this.client, this.mesh, name));
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
      if (r.succeeded) return this.tls ? this.grantNode(rec, r.header.revision) : rec;
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
  private async update(
    name: string,
    what: string,
    change: (r: NodeRecord) => NodeRecord,
    guard?: { key: string; modRevision: string; changed: string },
  ): Promise<NodeRecord> {
    checkNodeName(name);
    await this.requireMeta();
    const key = this.key("nodes", name);
    for (let attempt = 0; attempt < 10; attempt++) {
      const kv = await this.call(what, async () => (await this.client.get(key).exec()).kvs[0]);
      if (!kv) throw new BoltError(`node "${name}" is not enrolled in mesh "${this.mesh}"`);
      const next = change(JSON.parse(kv.value.toString()) as NodeRecord);
      const r = await this.call(what, () => {
        const cmp = this.client.if(key, "Mod", "==", kv.mod_revision);
        return (guard ? cmp.and(guard.key, "Mod", "==", guard.modRevision) : cmp).then(this.client.put(key).value(JSON.stringify(next))).commit();
      });
      if (r.succeeded) return next;
      if (guard) {
        const now = await this.call(what, async () => (await this.client.get(guard.key).exec()).kvs[0]);
        if ((now?.mod_revision ?? "0") !== guard.modRevision) throw new BoltError(guard.changed);
      }
    }
    throw new BoltError(`node "${name}": ${what} kept racing with other writers; try again`);
  }

  /**
   * Admits a node. The key it is admitted with is the one given, else the one its request
   * shows now (the key that was reviewed is the key that gets pinned), else none yet: with
   * key_policy "node" its request's key will count.
   */
  async approve(name: string, o: ApproveOptions = {}): Promise<NodeRecord> {
    if (o.publicKey) return this.approveSeen(name, o.publicKey, undefined, o);
    const r = await this.request(name);
    return this.approveSeen(name, r.request?.public_key, r.modRevision, o);
  }

  /** A node's request as it is now, and its ModRevision ("0": none yet) for a guarded write. */
  async request(name: string): Promise<{ request?: NodeRequest; modRevision: string }> {
    checkNodeName(name);
    const kv = await this.call("reading the node's request", async () => (await this.client.get(this.key("requests", name)).exec()).kvs[0]);
    return kv ? { request: JSON.parse(kv.value.toString()) as NodeRequest, modRevision: kv.mod_revision } : { modRevision: "0" };
  }

  /**
   * The approval as one transaction guarded by the request's ModRevision as it was read
   * (MULTIHOST.md §2.5): the key that was reviewed is the key that gets pinned — a request
   * rewritten in between (another key) refuses the approval instead of pinning the new key.
   * `--routes`/`--exit-node` add to what the node may announce.
   */
  async approveSeen(name: string, key: string | undefined, requestRevision: string | undefined, o: ApproveOptions = {}): Promise<NodeRecord> {
    for (const r of o.routes ?? []) {
      const c = parseCidr4(r);
      if (!c || c.hostBits) throw new BoltError(`--routes "${r}": an IPv4 prefix without host bits`);
    }
    const guard =
      requestRevision === undefined
        ? undefined
        : {
            key: this.key("requests", name),
            modRevision: requestRevision,
            changed: `node "${name}": its request changed while it was being approved (a new key?); nothing was approved — check \`bolt mesh list\` and approve again`,
          };
    return this.update(
      name,
      "approving",
      (r) => {
        if (r.state === "revoked") throw new BoltError(`node "${name}" is revoked: enroll it again under a new name (its address stays reserved)`);
        const pin = key ? { public_key: key, key_policy: "pinned" as const } : { key_policy: "node" as const };
        const routes = [...r.routes_allowed, ...(o.routes ?? []).filter((x) => !r.routes_allowed.includes(x))];
        return {
          ...r,
          state: "approved",
          approved_at: r.state === "approved" && r.approved_at ? r.approved_at : new Date().toISOString(),
          ...pin,
          routes_allowed: routes,
          exit_node_allowed: r.exit_node_allowed || !!o.exitNode,
        };
      },
      guard,
    );
  }

  /** With TLS, the node's etcd user and role go too: its next request is refused. */
  async revoke(name: string): Promise<NodeRecord> {
    const rec = await this.update(name, "revoking", (r) => ({ ...r, state: "revoked" }));
    if (this.tls) await this.dropAccess(name, `node "${name}" is revoked in the store`, `bolt mesh revoke ${name}`);
    return rec;
  }

  /**
   * Gives a just-enrolled node its etcd user and role. On failure the enrollment is undone
   * (its record and address claim, if still as written at `revision`), so it can be run again.
   */
  private async grantNode(rec: NodeRecord, revision: string): Promise<NodeRecord> {
    try {
      await this.call(`creating etcd user "${rec.name}" and its role`, () => ensureNodeUser(this.client, this.mesh, rec.name, prefixOf(this.mesh)));
      return rec;
    } catch (e) {
      const nodeKey = this.key("nodes", rec.name);
      await this.client
        .if(nodeKey, "Mod", "==", revision)
        .then(this.client.delete().key(nodeKey), this.client.delete().key(this.key("ipam", "v4", rec.mesh_ip4)))
        .commit()
        .catch(() => {});
      await dropNodeUser(this.client, this.mesh, rec.name).catch(() => {});
      throw new BoltError(`${(e as Error).message}; nothing was enrolled`);
    }
  }

  /** Deletes the node's etcd user and role (idempotent); a failure says where its record stands and what repairs it. */
  private async dropAccess(name: string, state: string, again: string): Promise<void> {
    try {
      await this.call(`deleting etcd user "${name}" and its role`, () => dropNodeUser(this.client, this.mesh, name));
    } catch (e) {
      throw new BoltError(`${state}, but ${(e as Error).message}; \`${again}\` again repairs it`);
    }
  }

  /** Whether the cluster enforces auth (RBAC mode); undefined when it cannot tell. */
  authEnabled(): Promise<boolean | undefined> {
    return this.call("reading the auth status", () => probeAuth(this.client));
  }

  expire(name: string, at: string): Promise<NodeRecord> {
    return this.update(name, "setting the expiry", (r) => ({ ...r, expires_at: at }));
  }

  /** Deletes the identity; with `release` its address claim too (otherwise it stays reserved); with TLS its etcd user and role. */
  async remove(name: string, release: boolean): Promise<void> {
    checkNodeName(name);
    await this.requireMeta();
    const key = this.key("nodes", name);
    const kv = await this.call("removing", async () => (await this.client.get(key).exec()).kvs[0]);
    if (!kv) throw new BoltError(`node "${name}" is not enrolled in mesh "${this.mesh}"`);
    const rec = JSON.parse(kv.value.toString()) as NodeRecord;
    // Access first: a failure leaves the record, so running remove again finishes the job.
    if (this.tls) await this.dropAccess(name, `node "${name}" was not removed`, `bolt mesh remove ${name}`);
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

  /** The whole mesh at one revision: one range read of its prefix, meta included (one RPC a daemon pass). */
  async snapshot(): Promise<MeshSnapshot> {
    const prefix = prefixOf(this.mesh);
    const res = await this.call("reading the mesh", () => this.client.getAll().prefix(prefix).exec());
    const metaKv = res.kvs.find((kv) => kv.key.toString() === `${prefix}meta`);
    const meta = checkMeta(metaKv ? (JSON.parse(metaKv.value.toString()) as MeshMeta) : undefined, this.url, this.mesh);
    const nodes: NodeRecord[] = [];
    const ipam: Record<string, string> = {};
    const requests: Record<string, NodeRequest> = {};
    let policy: MeshSnapshot["policy"];
    const status: Record<string, NodeStatus> = {};
    for (const kv of res.kvs) {
      const k = kv.key.toString().slice(prefix.length);
      if (k.startsWith("nodes/")) nodes.push(JSON.parse(kv.value.toString()) as NodeRecord);
      else if (k.startsWith("ipam/v4/")) ipam[k.slice(8)] = kv.value.toString();
      else if (k.startsWith("requests/")) requests[k.slice(9)] = JSON.parse(kv.value.toString()) as NodeRequest;
      else if (k.startsWith("status/")) status[k.slice(7)] = JSON.parse(kv.value.toString()) as NodeStatus;
      else if (k === "policy") {
        const text = (JSON.parse(kv.value.toString()) as { text?: string }).text;
        if (typeof text === "string") policy = { text, mod_revision: kv.mod_revision };
      }
    }
    nodes.sort((a, b) => a.name.localeCompare(b.name));
    return { revision: res.header.revision, meta, nodes, ipam, requests, status, ...(policy ? { policy } : {}) };
  }

  /** The node's own request (its key, endpoint, offers), read first; unchanged requests are not rewritten (publish). */
  async putRequest(name: string, req: Omit<NodeRequest, "v" | "at">): Promise<boolean> {
    checkNodeName(name);
    const raw = await this.call("reading this node's request", () => this.client.get(this.key("requests", name)).string());
    return this.publish(name, { request: { value: req, seen: raw ? (JSON.parse(raw) as NodeRequest) : null } });
  }

  private lease?: import("etcd3").Lease;
  private statusValue?: string;
  private watcher?: Promise<import("etcd3").Watcher | undefined>;

  /**
   * Calls `onChange` on any change under the mesh's prefix, for the daemon: an event only
   * enqueues a pass, which reads the whole mesh again (level-triggered; a missed or compacted
   * event is repaired by the next resync's read). A watch that fails or is cancelled (etcd
   * cancels one whose next revision was compacted away while this host was cut off) calls
   * `onChange` too — it may have missed changes — and is made again at the next call, which
   * that pass makes. A watch that reconnects after an outage replays what it missed; the loss
   * and the reconnection each start a pass as well.
   */
  watchMesh(onChange: () => void): void {
    if (this.watcher) return;
    const w = this.client
      .watch()
      .prefix(prefixOf(this.mesh))
      .create()
      .then((watcher) => {
        watcher.on("put", onChange).on("delete", onChange);
        // Losing the store and getting it back are news too, whatever the resync period: the
        // pass they start says "stale" (the snapshot applies) or "connected" again in /healthz.
        let lost = false;
        watcher.on("disconnected", () => {
          lost = true;
          onChange();
        });
        watcher.on("connected", () => {
          if (lost) onChange();
          lost = false;
        });
        const drop = () => {
          if (this.watcher === w) this.watcher = undefined;
          void watcher.cancel().catch(() => {});
        };
        watcher.on("error", () => {
          drop();
          onChange();
        });
        return watcher;
      })
      .catch(() => {
        if (this.watcher === w) this.watcher = undefined;
        return undefined;
      });
    this.watcher = w;
  }

  /**
   * This node's request (when `request` differs from `seen`, the one a snapshot just showed) and
   * its status under a lease of `ttl` seconds (MULTIHOST.md §2.5 liveness), in one transaction:
   * every other host's watch sees one change and makes one pass, not one for each key. `keep`
   * (the daemon): the client keeps the lease alive while this session is open and a status that
   * did not change is not rewritten; a lost lease is granted again at the next call. Without it
   * (a one-shot apply) the lease lapses `ttl` seconds after the process is gone. Says whether the
   * request was written.
   */
  async publish(
    name: string,
    o: { request?: { value: Omit<NodeRequest, "v" | "at">; seen: NodeRequest | null }; status?: { value: Omit<NodeStatus, "v">; ttl: number; keep: boolean } },
  ): Promise<boolean> {
    checkNodeName(name);
    const requestKey = this.key("requests", name);
    let request: string | undefined;
    if (o.request) {
      const { at: _at, ...old } = o.request.seen ?? ({} as NodeRequest);
      const next = { v: 1 as const, ...o.request.value };
      if (!o.request.seen || JSON.stringify(old) !== JSON.stringify(next)) request = JSON.stringify({ ...next, at: new Date().toISOString() });
    }
    const status = o.status ? JSON.stringify({ v: 1, ...o.status.value }) : undefined;
    const statusDue = status !== undefined && !(this.lease && !this.lease.revoked() && status === this.statusValue);
    if (request === undefined && !statusDue) return false;
    let lease: import("etcd3").Lease | undefined;
    if (statusDue) {
      if (!this.lease || this.lease.revoked()) {
        const made = this.client.lease(o.status!.ttl, { autoKeepAlive: o.status!.keep });
        made.on("lost", () => {
          if (this.lease === made) this.lease = undefined;
        });
        this.lease = made;
      }
      lease = this.lease;
    }
    try {
      const what = [request !== undefined ? "request" : "", statusDue ? "status" : ""].filter(Boolean).join(" and ");
      await this.call(`publishing this node's ${what}`, async () => {
        const puts = [
          ...(request !== undefined ? [this.client.put(requestKey).value(request)] : []),
          ...(statusDue
            ? [
                this.client
                  .put(this.key("status", name))
                  .value(status!)
                  .lease(await lease!.grant()),
              ]
            : []),
        ];
        // No condition: a transaction only so that both land in one revision (one watch event batch).
        await this.client
          .if(requestKey, "Version", ">", -1)
          .then(...puts)
          .commit();
      });
    } catch (e) {
      if (lease) {
        if (this.lease === lease) this.lease = undefined;
        lease.release();
      }
      throw e;
    }
    if (statusDue) this.statusValue = status;
    return request !== undefined;
  }
}

/** Not the network or broadcast address of the mesh, nor a .0 or .255 (some stacks treat those as special). */
function usable(addr: number, cidr: Cidr4): boolean {
  const last = addr & 255;
  const bcast = cidr.network + 2 ** (32 - cidr.prefix) - 1;
  return addr !== cidr.network && addr !== bcast && last !== 0 && last !== 255;
}

/** A mesh's meta as read: there, and of the schema this bolt knows. */
function checkMeta(m: MeshMeta | undefined, url: string, mesh: string): MeshMeta {
  if (!m) throw new BoltError(`control server ${url}: there is no mesh "${mesh}" (run \`bolt mesh init\` first)`);
  if (m.v !== 1) throw new BoltError(`control server ${url}: mesh "${mesh}" has schema v${m.v}; this bolt knows v1`);
  return m;
}
