/**
 * Machine-local runtime files (tmpfs: gone on reboot, like the namespaces they describe): the
 * target locks, the copies of sysctl originals, WireGuard's per-namespace control sockets.
 * BOLT_RUN_DIR moves it (tests).
 */
export const RUN_DIR = () => process.env.BOLT_RUN_DIR || "/run/bolt";

/**
 * WireGuard's userspace control sockets, per target namespace. wireguard-go and `wg` find a
 * device's socket at /var/run/wireguard/IF.sock, a path shared by every network namespace, so
 * two namespaces could not both have `gw0`. For a named namespace both run inside a private
 * mount namespace (kept in WG_DIR/NS.mnt) where /var/run/wireguard is WG_DIR/NS.
 */
export const WG_DIR = () => `${RUN_DIR()}/wg`;
export const wgSocketDir = (ns: string) => `${WG_DIR()}/${ns}`;
export const wgMountFile = (ns: string) => `${WG_DIR()}/${ns}.mnt`;
