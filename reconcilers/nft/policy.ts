import { portRange } from "../../src/core/ports.js";
/**
 * The segment policy language: `<allow|deny|reject> <proto>[:<ports>] <from|to> <target>`,
 * e.g. "allow udp:7777-7784 from gaming-segment", "deny all from external".
 * Targets: a segment, network or endpoint name, "external" (not from any bolt network),
 * "any", or an IPv4 or IPv6 CIDR. Errors carry the 0-based column inside the string.
 */
export interface Policy {
  action: "allow" | "deny" | "reject";
  protocol: "tcp" | "udp" | "icmp" | "all";
  ports?: [number, number];
  direction: "from" | "to";
  target: string;
}

export class PolicyError extends Error {
  constructor(
    message: string,
    readonly column: number,
  ) {
    super(message);
  }
}

const ACTIONS = ["allow", "deny", "reject"];
const PROTOCOLS = ["tcp", "udp", "icmp", "all"];

export function parsePolicy(text: string): Policy {
  const tokens: { t: string; col: number }[] = [];
  const re = /\S+/g;
  for (let m: RegExpExecArray | null; (m = re.exec(text)); ) tokens.push({ t: m[0], col: m.index });
  const at = (i: number) => tokens[i] ?? { t: "", col: text.length };
  const [a, p, d, tg] = [at(0), at(1), at(2), at(3)];
  if (!ACTIONS.includes(a.t)) throw new PolicyError(`expected allow, deny or reject, found ${a.t ? `"${a.t}"` : "nothing"}`, a.col);
  const [proto, portText, extra] = p.t.split(":");
  if (!PROTOCOLS.includes(proto ?? "")) throw new PolicyError(`expected a protocol (tcp, udp, icmp, all), found ${p.t ? `"${p.t}"` : "nothing"}`, p.col);
  let ports: [number, number] | undefined;
  if (portText !== undefined || extra !== undefined) {
    const portCol = p.col + proto!.length + 1;
    if (proto !== "tcp" && proto !== "udp") throw new PolicyError(`ports need tcp or udp, not ${proto}`, portCol);
    const r = portRange(portText ?? "");
    if (!r || extra !== undefined) throw new PolicyError(`expected a port or a range N-M (1-65535), found "${p.t.slice(proto!.length + 1)}"`, portCol);
    ports = r;
  }
  if (d.t !== "from" && d.t !== "to") throw new PolicyError(`expected "from" or "to", found ${d.t ? `"${d.t}"` : "nothing"}`, d.col);
  if (!tg.t) throw new PolicyError(`expected a target (segment, network, endpoint, external, any or CIDR) after "${d.t}"`, tg.col);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*(\/\d{1,2})?$/.test(tg.t) && !/^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(\/\d{1,3})?$/.test(tg.t))
    throw new PolicyError(`"${tg.t}" is not a name or CIDR`, tg.col);
  if (tokens.length > 4) throw new PolicyError(`unexpected "${tokens[4]!.t}" after the target`, tokens[4]!.col);
  return { action: a.t as Policy["action"], protocol: proto as Policy["protocol"], ports, direction: d.t, target: tg.t };
}

export { portRange };
