/**
 * A dual-stack bridge's link-local address (Docker's choice for its bridges too). The kernel
 * sends a neighbour solicitation for a forwarded packet (NAT66 replies, routed IPv6, port
 * forwards) only from a link-local address of the device (ndisc_send_ns: no lladdr, no NS), so
 * without one an endpoint is reachable only while some earlier exchange keeps its neighbour
 * entry alive. `nodad` like the gateway: bolt owns this link.
 */
export const LINK_LOCAL = "fe80::1/64";
