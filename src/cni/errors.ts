/**
 * CNI errors (spec 1.0, "Error"): the plugin prints `{cniVersion, code, msg, details}` on
 * stdout and exits non-zero. Codes 1–99 are the spec's; 100+ are bolt's own.
 */
export const CNI_CODE = {
  /** the config's cniVersion is not one this plugin speaks */
  incompatibleVersion: 1,
  /** a key the network config must not have (the message names it) */
  unsupportedField: 2,
  /** CHECK of an attachment bolt does not know */
  unknownContainer: 3,
  /** CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME missing or malformed (the message names the variable) */
  invalidEnv: 4,
  /** stdin could not be read */
  io: 5,
  /** stdin is not a JSON object */
  decode: 6,
  /** a field of the network config is wrong: an unknown bolt network, a bad stateDir… */
  invalidConfig: 7,
  /** transient: bolt's target lock is held too long, the daemon is restarting */
  tryAgainLater: 11,
  /** STATUS (spec 1.1): the network cannot take ADDs now */
  notAvailable: 50,
  /** bolt's engine refused the attachment or its apply failed (rolled back, nothing left) */
  engine: 100,
  /** CHECK: the kernel does not match what bolt recorded for the attachment */
  checkFailed: 101,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details = "",
  ) {
    super(message);
  }
}

/** The error document of the spec, for the config's cniVersion (or the newest this plugin speaks). */
export function errorJson(e: CniError, cniVersion: string): string {
  return `${JSON.stringify({ cniVersion, code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) }, null, 2)}\n`;
}
