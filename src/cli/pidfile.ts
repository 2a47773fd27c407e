/**
 * The PID file lets `neuron stop` and `neuron status` find a running instance. It holds the
 * process id and where it listens; it is written after the server is listening and removed on a
 * clean stop. A stale file (its process is gone) is treated as "not running".
 */
import { mkdirSync, readFileSync, writeFileSync, rmSync, renameSync } from 'node:fs';
import path from 'node:path';

export interface PidRecord {
  pid: number;
  instanceId: string;
  url: string;
  handshakeUrl: string;
  startedAt: string;
}

export function readPidFile(file: string): PidRecord | null {
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as PidRecord;
    return typeof record.pid === 'number' ? record : null;
  } catch {
    return null;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/**
 * A process that has exited but whose parent has not collected it yet still answers signal 0.
 * On Linux /proc tells the difference; elsewhere we cannot, and treat it as alive.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state letter follows the command name, which is in parentheses and may contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/** The running instance for this data directory, or null. */
export function runningInstance(file: string): PidRecord | null {
  const record = readPidFile(file);
  return record && isAlive(record.pid) ? record : null;
}

export function writePidFile(file: string, record: PidRecord): void {
  // On PostgreSQL nothing else creates the data directory (SQLite's file does on SQLite).
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}

export function removePidFile(file: string, pid: number): void {
  if (readPidFile(file)?.pid === pid) rmSync(file, { force: true });
}
