// A clean Debian bookworm root (debootstrap, from Debian's own packages) to run the devcontainer
// feature in, since this machine has no Docker engine: what `devcontainer features test` would do in a
// container, done with chroot. The base root is built once per machine and copied for each test run.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BASE = '/var/cache/odooops-test/bookworm-minbase';
/** Downloaded .deb files, kept between runs (apt checks each against the signed lists before use). */
const APT_ARCHIVES = '/var/cache/odooops-test/apt-archives';
const MIRROR = 'http://deb.debian.org/debian';

export interface Chroot {
  root: string;
  /** Runs a command inside (as root, or as `user`), with exactly the environment given plus PATH. */
  exec(cmd: string[], opts?: { user?: string; env?: Record<string, string>; timeoutMs?: number }): Promise<{ code: number; out: string; err: string }>;
  close(): Promise<void>;
}

async function baseRoot(): Promise<string> {
  if (existsSync(join(BASE, 'etc', 'debian_version'))) return BASE;
  mkdirSync('/var/cache/odooops-test', { recursive: true });
  const tmp = mkdtempSync('/var/cache/odooops-test/debootstrap-');
  await run('debootstrap', ['--variant=minbase', 'bookworm', tmp, MIRROR], { maxBuffer: 64 << 20, timeout: 15 * 60_000 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, BASE);
  return BASE;
}

export async function debianChroot(parent: string): Promise<Chroot> {
  if (process.getuid?.() !== 0) throw new Error('the devcontainer feature test runs install.sh in a chroot: run the tests as root');
  const base = await baseRoot();
  const root = mkdtempSync(join(parent, 'rootfs-'));
  await run('cp', ['-a', `${base}/.`, root]);
  // A root directory like any other (mkdtemp made it 0700): the container user must get through it.
  chmodSync(root, 0o755);
  await copyFile('/etc/resolv.conf', join(root, 'etc', 'resolv.conf'));
  await run('mount', ['-t', 'proc', 'proc', join(root, 'proc')]);
  // /dev with its submounts (/dev/shm: PostgreSQL's shared memory), never propagating back to the host's.
  await run('mount', ['--rbind', '/dev', join(root, 'dev')]);
  await run('mount', ['--make-rslave', join(root, 'dev')]);
  // Each run installs the same packages into a fresh root: downloading them once is enough.
  mkdirSync(join(APT_ARCHIVES, 'partial'), { recursive: true });
  await run('mount', ['--bind', APT_ARCHIVES, join(root, 'var', 'cache', 'apt', 'archives')]);
  const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return {
    root,
    async exec(cmd, opts = {}) {
      const env = Object.entries({ PATH, ...(opts.env ?? {}) }).map(([k, v]) => `${k}=${v}`);
      const args = [...(opts.user ? [`--userspec=${opts.user}:${opts.user}`] : []), root, '/usr/bin/env', '-i', ...env, ...cmd];
      try {
        const r = await run('chroot', args, { maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 15 * 60_000 });
        return { code: 0, out: r.stdout, err: r.stderr };
      } catch (e) {
        const x = e as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
      }
    },
    async close() {
      // Whatever still runs inside (PostgreSQL, a stand-in Odoo) is stopped before the mounts go.
      const { stdout } = await run('sh', ['-c', `for p in /proc/[0-9]*; do [ "$(readlink $p/root)" = "${root}" ] && echo \${p#/proc/}; done; true`]);
      for (const pid of stdout.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {}
      }
      await new Promise((r) => setTimeout(r, 300));
      // Every mount under the root (dev and its submounts, proc, tmpfs a test added), deepest first.
      const under = () => readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m): m is string => !!m && (m === root || m.startsWith(`${root}/`)));
      for (const m of under().sort((a, b) => b.length - a.length)) {
        await run('umount', [m]).catch(() => run('umount', ['-l', m]).catch(() => {}));
      }
      // Never delete through a mount: that would reach the host's /dev.
      if (under().length) throw new Error(`could not unmount ${under().join(', ')}; ${root} is left in place`);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
