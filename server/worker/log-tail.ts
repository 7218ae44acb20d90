// Following a log file as `tail -F` does, on the worker's machine (a local runtime's odoo.log) or on an
// ssh runtime's host (`tail -F` there, over the system's ssh, as the run user). Either hands complete
// lines to `onLines` in order and keeps going across what happens to a running Odoo's log:
//   * Odoo restarted: it appends to the same file (LocalOdoo opens it with O_APPEND): new lines;
//   * rotated by rename: the old file is read to its end, then the new one from its start;
//   * rotated by copytruncate: the file shrinks under the offset: read again from its start.
// A local file is polled (stat + read of what was added): no inotify limits, works on every filesystem,
// and a quiet log costs one stat per poll.
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import { spawnAs } from '../infra/run-user.ts';
import type { SshRuntime } from '../infra/registry.ts';
import { sshArgs } from '../deploy/ssh-odoo.ts';

/** Where a tail stopped: the file's identity (device:inode) and the byte offset after its last whole line. */
export interface TailPosition {
  source: string;
  offset: number;
}

export interface LogTail {
  /** Where it is now (null before the file was first seen, and for ssh tails, which cannot say). */
  position(): TailPosition | null;
  stop(): Promise<void>;
}

export interface FileTailOptions {
  /** Where a previous tail stopped: resumed there when it is the same file and not too far behind. */
  resume?: TailPosition | null;
  /** Bytes of the existing file shown when not resuming (the last whole lines within them). */
  backlogBytes?: number;
  /** Resuming further behind than this skips ahead to the backlog instead. */
  maxResumeBytes?: number;
  pollMs?: number;
  onError?: (err: Error) => void;
  /**
   * The owners (uids) a file may have to be read. The server may run as root while Odoo (and the code of
   * a branch it runs) is the run user, who can replace its log with a link to a file only root may
   * read: a symbolic link is never followed, and a file of another owner or with another link is refused.
   */
  owners?: number[];
}

const CHUNK = 1 << 20;

export function tailFile(path: string, onLines: (lines: string[]) => Promise<void>, opts: FileTailOptions = {}): LogTail {
  const backlog = opts.backlogBytes ?? 32 * 1024;
  const maxResume = opts.maxResumeBytes ?? 1 << 20;
  const pollMs = opts.pollMs ?? 250;
  let fh: FileHandle | null = null;
  let id: string | null = null;
  let offset = 0;
  let rest = Buffer.alloc(0);
  let first = true;
  let stopped = false;
  /** A file refused once (its dev:ino) is not opened again; a new file in its place is looked at. */
  let refused: string | null = null;
  let timer: NodeJS.Timeout | undefined;

  /** Reads from `offset` to the end of the open file; hands over whole lines; returns when at the end. */
  const drain = async (final: boolean) => {
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const { bytesRead } = await fh!.read(buf, 0, CHUNK, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
      const data = rest.length ? Buffer.concat([rest, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      const end = data.lastIndexOf(0x0a);
      if (end < 0) {
        rest = Buffer.from(data);
        continue;
      }
      rest = Buffer.from(data.subarray(end + 1));
      await onLines(data.subarray(0, end).toString('utf8').split('\n'));
      if (stopped) return;
    }
    // A file left for good (renamed away) may end without a newline: its last line is whole too.
    if (final && rest.length) {
      const last = rest.toString('utf8');
      rest = Buffer.alloc(0);
      await onLines([last]);
    }
  };

  /** Where to start in a file seen for the first time: resumed, or its last `backlog` bytes from a line start. */
  const startAt = async (size: number, source: string): Promise<number> => {
    const r = opts.resume;
    if (first && r && r.source === source && r.offset <= size && size - r.offset <= maxResume) return r.offset;
    if (!first) return 0; // a new file after a rotation: all of it
    if (size <= backlog) return 0;
    const buf = Buffer.alloc(backlog);
    const { bytesRead } = await fh!.read(buf, 0, backlog, size - backlog);
    const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
    return nl < 0 ? size : size - backlog + nl + 1;
  };

  const poll = async () => {
    let s;
    try {
      s = await stat(path, { bigint: false });
    } catch {
      s = null; // not there (yet, or between a rename and the new file): keep reading the open one
    }
    const current = s ? `${s.dev}:${s.ino}` : null;
    if (fh && current && current !== id) {
      // Rotated: what was written to the old file before the new one appeared, then the new file. While
      // the name leads nowhere (renamed, not yet re-created) the old file is still the one Odoo writes.
      await drain(true);
      await fh.close();
      fh = null;
    }
    if (!fh && s && current && current !== refused) {
      // Non-blocking: a FIFO put in its place must not hang the worker.
      const candidate = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const opened = await candidate.stat();
      // One link only: a hard link to another file (where the system lets a user make one) is not a log.
      const why = !opened.isFile() ? 'not a regular file' : opened.nlink !== 1 ? `${opened.nlink} links to it`
        : opts.owners && !opts.owners.includes(opened.uid) ? `owner uid ${opened.uid}` : null;
      if (why) {
        await candidate.close();
        refused = current;
        throw new Error(`${path} is not a plain file of the user Odoo runs as (${why}); not read`);
      }
      fh = candidate;
      id = `${opened.dev}:${opened.ino}`;
      offset = await startAt(opened.size, id);
      rest = Buffer.alloc(0);
      first = false;
    }
    if (!fh) return;
    const size = (await fh.stat()).size;
    if (size < offset) {
      // Truncated in place (copytruncate): everything in it now is new.
      offset = 0;
      rest = Buffer.alloc(0);
    }
    if (size > offset) await drain(false);
  };

  const loop = async () => {
    if (stopped) return;
    try {
      await poll();
    } catch (err) {
      opts.onError?.(err as Error);
    }
    if (!stopped) timer = setTimeout(() => void loop(), pollMs);
  };
  void loop();

  return {
    position: () => (id ? { source: id, offset: offset - rest.length } : null),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await fh?.close().catch(() => {});
      fh = null;
    },
  };
}

export interface SshTailOptions {
  /** Lines of the existing log shown first (tail -n); 0 when resuming. */
  backlogLines: number;
  knownHosts: string;
  onError?: (err: Error) => void;
  /** Wait before ssh is started again after it ended (a dropped connection). */
  retryMs?: number;
}

/**
 * `tail -F` on the runtime's host: follows renames and truncation itself (GNU and busybox tail both do).
 * When ssh ends (the connection dropped, the host rebooted), it is started again without a backlog.
 */
export function tailOverSsh(target: SshRuntime, path: string, onLines: (lines: string[]) => Promise<void>, opts: SshTailOptions): LogTail {
  let child: ChildProcess | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const start = (backlog: number) => {
    // The path is the operator's (the registry), passed as one quoted argument; `--` ends tail's options.
    const argv = ['tail', '-n', String(backlog), '-F', '--', path];
    const c = spawnAs('ssh', sshArgs(target, opts.knownHosts, argv), { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let rest = '';
    let chain = Promise.resolve();
    c.stdout!.on('data', (d: Buffer) => {
      const parts = (rest + d.toString('utf8')).split('\n');
      rest = parts.pop()!;
      if (parts.length) chain = chain.then(() => onLines(parts)).catch((err) => opts.onError?.(err as Error));
    });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    c.once('error', (e) => opts.onError?.(new Error(`ssh could not run: ${e.message}`)));
    c.once('close', (code) => {
      if (stopped) return;
      opts.onError?.(new Error(`tail -F on ${target.host} ended (exit ${code}): ${err.trim().split('\n').slice(-2).join(' / ') || 'no message'}; starting it again`));
      timer = setTimeout(() => start(0), opts.retryMs ?? 2000);
    });
  };
  start(opts.backlogLines);
  return {
    position: () => null,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (child && child.exitCode === null && child.signalCode === null) {
        const closed = new Promise((r) => child!.once('close', r));
        child.kill('SIGTERM');
        await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
      }
    },
  };
}
