/**
 * Kernel ownership conventions, decided once (README "Kernel conventions").
 * - links: alias `bolt1,…` (see ownership.ts)
 * - routes bolt installs: this private rtnetlink protocol number (free in
 *   /etc/iproute2/rt_protos; routing daemons use 8–16, 42, 99, 186–192)
 */
export const ROUTE_PROTO = "176";
/** interface name of a veth endpoint inside its namespace */
export const INNER_IFNAME = "eth0";
