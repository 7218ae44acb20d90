// Ends everything a shell session started, not only its first process: a session's bash may have put
// jobs in the background, started a new session (setsid) or a daemon. What belongs to it: the processes
// below the leader, those in its session, and those carrying the session's marker in their environment
// (what a double fork out of the tree and the session still keeps, unless it also empties its
// environment; SECURITY.md says what escapes). Read from /proc (Linux, where the server runs its tools).
import { readdirSync, readFileSync } from 'node:fs';

interface Proc {
  pid: number;
  ppid: number;
  sid: number;
  zombie: boolean;
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: the fields start after the last ")".
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(name), ppid: Number(f[1]), sid: Number(f[3]), zombie: f[0] === 'Z' });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function carries(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`).includes(`${marker}\0`);
  } catch {
    return false;
  }
}

/**
 * The live processes of a session: those carrying `marker` (NAME=value, unique to the session) in their
 * environment, everything below them, and everything in a session one of them leads. Anchored on the
 * marker, never on a pid alone: a pid the session's leader had may belong to someone else by now.
 */
export function sessionProcesses(marker: string): number[] {
  const all = processes();
  const children = new Map<number, number[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const marked = all.filter((p) => carries(p.pid, marker));
  const sessions = new Set(marked.filter((p) => p.sid === p.pid).map((p) => p.pid));
  const found = new Set<number>();
  const queue = [...marked.map((p) => p.pid), ...all.filter((p) => sessions.has(p.sid)).map((p) => p.pid)];
  while (queue.length) {
    const pid = queue.pop()!;
    if (found.has(pid)) continue;
    found.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  const live = new Set(all.filter((p) => !p.zombie).map((p) => p.pid));
  found.delete(process.pid);
  return [...found].filter((pid) => live.has(pid));
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/**
 * Hangs the session up (SIGHUP, as a closed terminal does: psql and Odoo's shell end cleanly), then after
 * `graceMs` stops whatever is left (SIGSTOP, so nothing forks away while it is listed) and kills it.
 * Resolves with the number of processes that had to be killed.
 */
export async function endSession(marker: string, graceMs = 2000): Promise<number> {
  signal(sessionProcesses(marker), 'SIGHUP');
  const until = Date.now() + graceMs;
  while (Date.now() < until && sessionProcesses(marker).length) await new Promise((r) => setTimeout(r, 50));
  let killed = 0;
  for (let round = 0; round < 10; round++) {
    let found = sessionProcesses(marker);
    if (!found.length) break;
    signal(found, 'SIGSTOP');
    found = [...new Set([...found, ...sessionProcesses(marker)])];
    signal(found, 'SIGKILL');
    killed += found.length;
    await new Promise((r) => setTimeout(r, 50));
  }
  return killed;
}
