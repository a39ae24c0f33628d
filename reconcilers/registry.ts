import { compileRegistry } from "../src/core/registry.js";
import type { Reconciler } from "../src/core/resource.js";
import { networkReconciler } from "./network/index.js";
import { endpointReconciler } from "./endpoint/index.js";
import { sysctlReconciler } from "./sysctl/index.js";
import { nftReconciler } from "./nft/index.js";
import { dockerUserReconciler } from "./docker-user/index.js";
import { wireguardReconciler } from "./wireguard/index.js";
import { wgPeerReconciler } from "./wg-peer/index.js";
import { routeReconciler } from "./route/index.js";
import { ruleReconciler } from "./rule/index.js";
import { rtTableReconciler } from "./rt-table/index.js";
import { hostsReconciler } from "./hosts/index.js";
import { bgpReconciler } from "./bgp/index.js";
import { tcReconciler } from "./tc/index.js";
import { ebpfReconciler } from "./ebpf/index.js";
import { resolverReconciler } from "./resolver/index.js";
import { dhcpReconciler } from "./dhcp/index.js";

/**
 * Every resource kind bolt reconciles, in the order plans list them. Adding a kind: its
 * folder + one line here. Evaluation and write order come from the kinds' own `uses` and
 * `phases`, compiled once (an inconsistent declaration fails here, at start-up).
 */
export const RECONCILERS: Reconciler[] = [
  networkReconciler,
  endpointReconciler,
  sysctlReconciler,
  wireguardReconciler,
  wgPeerReconciler,
  routeReconciler,
  ruleReconciler,
  rtTableReconciler,
  nftReconciler,
  dockerUserReconciler,
  hostsReconciler,
  resolverReconciler,
  bgpReconciler,
  tcReconciler,
  ebpfReconciler,
  dhcpReconciler,
];

export const REGISTRY = compileRegistry(RECONCILERS);
