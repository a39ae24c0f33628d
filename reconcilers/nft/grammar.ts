/**
 * Everything from a config that reaches an nft script passes one of these checks first
 * (schema patterns already apply; this is the last line of defence at render time):
 * nothing a user writes can close a string, open a block, or start a new statement.
 */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export function nftName(s: string): string {
  if (!NAME.test(s)) throw new Error(`internal: refusing to put ${JSON.stringify(s)} into an nft script`);
  return s;
}

/** A quoted interface name. */
export function nftIfname(s: string): string {
  if (!IFNAME.test(s)) throw new Error(`internal: refusing interface name ${JSON.stringify(s)} in an nft script`);
  return `"${s}"`;
}

/** A comment body: names, digits and a few separators only. */
export function nftComment(s: string): string {
  if (!/^[A-Za-z0-9_.:|/ -]{1,120}$/.test(s)) throw new Error(`internal: refusing nft comment ${JSON.stringify(s)}`);
  return `"${s}"`;
}
