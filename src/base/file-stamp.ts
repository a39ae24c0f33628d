import { statSync } from "node:fs";

/** A file's identity: a write (in place or renamed over) or a removal changes it. */
export function fileStamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch {
    return "missing";
  }
}

/** Whether path is a regular file (a FIFO or a device has no contents a stamp could stand for). */
export function isPlainFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
