/**
 * `wg show IF dump`: the first line is the interface (private key, public key, listen port,
 * fwmark), then one line per peer (public key, preshared key, endpoint, allowed ips, latest
 * handshake, rx, tx, keepalive), tab-separated. Key material (private and preshared keys) is
 * dropped here and never leaves this function: a digest stands in for the preshared key.
 */
import { createHash } from "node:crypto";

export interface WgDumpPeer {
  publicKey: string;
  /** "" when none, else a short digest */
  psk: string;
  endpoint: string;
  allowedIps: string[];
  latestHandshake: number;
  rx: number;
  tx: number;
  keepalive: number;
}

export interface WgDump {
  publicKey: string;
  listenPort: number;
  fwmark: number;
  peers: WgDumpPeer[];
}

export function pskDigest(psk: string): string {
  return "sha256:" + createHash("sha256").update(psk.trim()).digest("hex").slice(0, 12);
}

export function parseWgDump(text: string): WgDump | undefined {
  const lines = text.split("\n").filter((l) => l.trim());
  const head = lines[0]?.split("\t");
  if (!head || head.length < 4) return undefined;
  const peers = lines.slice(1).map((l): WgDumpPeer => {
    const f = l.split("\t");
    return {
      publicKey: f[0]!,
      psk: f[1] && f[1] !== "(none)" ? pskDigest(f[1]) : "",
      endpoint: f[2] && f[2] !== "(none)" ? f[2] : "",
      allowedIps: f[3] && f[3] !== "(none)" ? f[3].split(",").filter(Boolean).sort() : [],
      latestHandshake: Number(f[4] ?? 0),
      rx: Number(f[5] ?? 0),
      tx: Number(f[6] ?? 0),
      keepalive: f[7] === "off" || !f[7] ? 0 : Number(f[7]),
    };
  });
  return { publicKey: head[1]!, listenPort: Number(head[2]), fwmark: head[3] === "off" ? 0 : Number(head[3]), peers };
}
