import type { SourcePos } from "../core/diagnostics.js";
import type { Cidr4 } from "../core/ipv4.js";

/** The normalized, validated user intent: what the files say, before any kernel state is known. */
export interface NetworkIntent {
  name: string;
  bridge: string;
  subnet: Cidr4;
  gateway: number;
  pool: { start: number; end: number };
  mtu: number;
  /** masquerade out of the host and forwarding outwards (Docker/Joblet default) */
  internet: boolean;
  /** no forwarding to or from other bolt networks */
  isolated: boolean;
  source: SourcePos;
  fieldSources: Record<string, SourcePos>;
}

export interface EndpointIntent {
  name: string;
  network: string;
  type: "veth" | "tap";
  /** netns of a veth endpoint (prefix applied); undefined for taps */
  netns?: string;
  /** static address, else IPAM leases one */
  ip?: number;
  mac?: string;
  source: SourcePos;
  fieldSources: Record<string, SourcePos>;
}

export interface SysctlIntent {
  key: string;
  value: string;
  source: SourcePos;
  /** set because another feature needs it (ip_forward for NAT), not written by the user */
  implied?: boolean;
}

export interface Intent {
  networks: NetworkIntent[];
  endpoints: EndpointIntent[];
  sysctls: SysctlIntent[];
  files: string[];
  /** firewall, NAT, port forwards, segments (src/reconcilers/nft/intent.ts) */
  nft?: NftIntent;
  /** WireGuard interfaces: [wireguard.*] and the mesh node (src/reconcilers/wireguard/intent.ts) */
  wireguard?: WgIntent[];
  mesh?: MeshIntent;
}

import type { MeshIntent, WgIntent } from "../reconcilers/wireguard/intent.js";

export type { NftIntent } from "../reconcilers/nft/intent.js";
import type { NftIntent } from "../reconcilers/nft/intent.js";
