import { readdir, readFile } from 'node:fs/promises';

/**
 * Whether process group `pgid` still has a live member. `kill(-pgid, 0)` alone also counts
 * zombies (dead, not yet reaped: common in containers whose init does not reap), so on Linux
 * the members found in /proc are checked for a state other than Z. Elsewhere, or when /proc
 * cannot be read, the answer of `kill` stands.
 *
 * @example
 * await groupAlive(child.pid); // false once every process of the group has exited
 */
export async function groupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true;
  }
  return false;
}
