import { randomInt } from "node:crypto";

/**
 * Deleting net devices one `ip link del` at a time costs an RCU grace period or more per device
 * (~20–40 ms for a veth here): unregister_netdevice waits for every reader. `ip link del group
 * G` unregisters all devices of a link group in one unregister_netdevice_many call, with one
 * set of grace periods. So a run of consecutive `link del dev X` lines in one `ip -batch` is
 * sent as `link set dev X group G` for each, then `link del group G` — same result, same order
 * relative to the lines around it.
 *
 * G is random in [2^30, 2^31): a group bolt never leaves behind and that no foreign link is in
 * (people number their groups from 1; the chance of meeting a random 30-bit one is nil, and
 * bolt holds the target's lock meanwhile).
 */
export interface GroupedBatch {
  /** the lines sent */
  lines: string[];
  /** for a failure at sent line N (1-based): how many of the original lines took effect */
  doneBefore(sentLine: number): number;
  /** when sent line N failed inside a run: the devices whose group was changed and must get it back */
  regroupAfter(sentLine: number): string[];
}

/**
 * Runs shorter than this are sent line by line: the saving is small (tens of ms), and a failure
 * then names the exact device's line.
 */
export const MIN_RUN = 8;
const DEL = /^link del dev (\S+)$/;

export function groupDeletes(lines: string[], group: number = randomInt(2 ** 30, 2 ** 31), minRun = MIN_RUN): GroupedBatch {
  const sent: string[] = [];
  // per sent line: the original line index it stands for, and the run (first original index, devices) it belongs to
  const origin: { index: number; run?: { start: number; devs: string[]; at: number } }[] = [];
  for (let i = 0; i < lines.length; ) {
    let j = i;
    while (j < lines.length && DEL.test(lines[j]!)) j++;
    if (j - i >= minRun) {
      const devs = lines.slice(i, j).map((l) => DEL.exec(l)![1]!);
      devs.forEach((d, k) => {
        sent.push(`link set dev ${d} group ${group}`);
        origin.push({ index: i + k, run: { start: i, devs, at: k } });
      });
      sent.push(`link del group ${group}`);
      origin.push({ index: j - 1, run: { start: i, devs, at: devs.length } });
      i = j;
    } else {
      sent.push(lines[i]!);
      origin.push({ index: i });
      i++;
    }
  }
  return {
    lines: sent,
    // Inside a run nothing is deleted until its last line: none of the run's ops took effect.
    doneBefore: (n) => {
      const o = origin[n - 1];
      return o === undefined ? lines.length : (o.run?.start ?? o.index);
    },
    regroupAfter: (n) => {
      const r = origin[n - 1]?.run;
      return r ? r.devs.slice(0, r.at) : [];
    },
  };
}
