/**
 * The normalized, validated user intent: what the files say, before any kernel state is
 * known. One fragment per kind that reads the config, built by iterating the registry
 * (config/normalize.ts); the core never looks inside a fragment.
 */
export interface Intent {
  files: string[];
  kinds: Record<string, unknown>;
}

export function emptyIntent(files: string[] = []): Intent {
  return { files, kinds: {} };
}

/** A kind's typed handle on its fragment: `fragment(intent, NETWORKS)`. */
export interface FragmentKey<T> {
  kind: string;
  empty: () => T;
}

export function fragmentKey<T>(kind: string, empty: () => T): FragmentKey<T> {
  return { kind, empty };
}

export function fragment<T>(intent: Intent, key: FragmentKey<T>): T {
  return (intent.kinds[key.kind] as T | undefined) ?? key.empty();
}

/** Only the fragments of these kinds (what a kind declared it `uses`, and its own). */
export function intentFor(intent: Intent, kinds: string[]): Intent {
  const out: Record<string, unknown> = {};
  for (const k of kinds) if (k in intent.kinds) out[k] = intent.kinds[k];
  return { files: intent.files, kinds: out };
}

/**
 * Revisions and saved plans written before intents were per kind hold one flat struct
 * (networks, endpoints, sysctls, nft, wireguard, mesh): read them into today's shape.
 */
export function upgradeIntent(raw: unknown): Intent {
  const v = (raw ?? {}) as Record<string, unknown>;
  if (v.kinds && typeof v.kinds === "object") return { files: (v.files as string[]) ?? [], kinds: v.kinds as Record<string, unknown> };
  const kinds: Record<string, unknown> = {};
  if (Array.isArray(v.networks) && v.networks.length) kinds.network = v.networks;
  if (Array.isArray(v.endpoints) && v.endpoints.length) kinds.endpoint = v.endpoints;
  if (Array.isArray(v.sysctls) && v.sysctls.length) kinds.sysctl = v.sysctls;
  if (v.nft) kinds.nft = v.nft;
  if (v.wireguard || v.mesh) kinds.wireguard = { interfaces: v.wireguard ?? [], mesh: v.mesh };
  return { files: (v.files as string[]) ?? [], kinds };
}
