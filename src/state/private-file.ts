// Writes a private file (0600) and flushes it to disk before returning: what the atomic state write
// does to its temp file, and how a recovery file is written.
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';

/** Creates or truncates `path` with mode 0600, writes `text` and fsyncs it. */
export function writePrivateFile(path: string, text: string): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
