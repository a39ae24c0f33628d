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
}

export interface Intent {
  networks: NetworkIntent[];
  endpoints: EndpointIntent[];
  sysctls: SysctlIntent[];
  files: string[];
}
