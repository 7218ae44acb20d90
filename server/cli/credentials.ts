// Where `odooops login` keeps sessions, per server URL: the OS keychain where there is one that works
// (libsecret's secret-tool on Linux, `security` on macOS), else ~/.odooops/credentials.json, mode 0600.
// The file also says which server was signed in to last (the default) and, for sessions in the
// keychain, only that there is one. A file others can read is refused, as ssh refuses such a key:
// whoever could read it may have copied the sessions.
import { serverKey as sharedServerKey } from '../../client/session.ts';
import { execFile } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { CliError, EXIT } from '../../client/api-client.ts';
import { StoredSession, type SessionStorage } from '../../client/session.ts';
import { clientFiles } from '../../contract/home.ts';

const FileShape = z.object({
  version: z.literal(1),
  default: z.string().nullable(),
  servers: z.record(z.string(), z.union([
    z.object({ store: z.literal('file'), session: StoredSession }),
    z.object({ store: z.literal('keychain'), keychain: z.enum(['secret-tool', 'security']) }),
  ])),
});
type FileShape = z.infer<typeof FileShape>;

/** A server URL as the key of its session: scheme, host, port and path, without a trailing slash. */
export function serverKey(url: string): string {
  if (!URL.canParse(url)) throw new CliError(`${url} is not a URL`, EXIT.usage, 'Give the server\'s address, e.g. --url https://odooops.example.com');
  return sharedServerKey(url);
}

interface Keychain {
  name: 'secret-tool' | 'security';
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<boolean>;
  delete(key: string): Promise<void>;
}

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 10_000, encoding: 'utf8' }, (err, stdout) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout });
    });
    child.stdin?.end(input ?? '');
  });
}

// Values go in as base64url: no quoting questions for `security -i`, and the secret is never an
// argument (arguments are visible to every user in ps).
const encode = (v: string) => Buffer.from(v).toString('base64url');
const decode = (v: string) => Buffer.from(v.trim(), 'base64url').toString('utf8');

const secretTool: Keychain = {
  name: 'secret-tool',
  async get(key) {
    const r = await run('secret-tool', ['lookup', 'service', 'odooops', 'server', key]);
    return r.code === 0 && r.stdout.trim() ? decode(r.stdout) : undefined;
  },
  async set(key, value) {
    return (await run('secret-tool', ['store', '--label', `OdooOps session for ${key}`, 'service', 'odooops', 'server', key], encode(value))).code === 0;
  },
  async delete(key) {
    await run('secret-tool', ['clear', 'service', 'odooops', 'server', key]);
  },
};

const macKeychain: Keychain = {
  name: 'security',
  async get(key) {
    const r = await run('security', ['find-generic-password', '-s', 'odooops', '-a', key, '-w']);
    return r.code === 0 && r.stdout.trim() ? decode(r.stdout) : undefined;
  },
  async set(key, value) {
    // `security -i` reads the command from stdin, so the value is not in the process list.
    return (await run('security', ['-i'], `add-generic-password -U -s odooops -a "${key}" -w ${encode(value)}\n`)).code === 0;
  },
  async delete(key) {
    await run('security', ['delete-generic-password', '-s', 'odooops', '-a', key]);
  },
};

/**
 * The keychain to try: ODOOOPS_CREDENTIAL_STORE=file turns it off (CI, tests); otherwise macOS's, or
 * secret-tool where a D-Bus session could reach a secret service. Whether it works is found out by
 * storing: a failure falls back to the file.
 */
function keychain(): Keychain | undefined {
  const want = process.env.ODOOOPS_CREDENTIAL_STORE;
  if (want === 'file') return undefined;
  if (process.platform === 'darwin') return macKeychain;
  if (process.platform === 'linux' && (process.env.DBUS_SESSION_BUS_ADDRESS || want === 'keychain')) {
    const path = (process.env.PATH ?? '').split(':');
    if (path.some((d) => d && existsSync(`${d}/secret-tool`))) return secretTool;
  }
  return undefined;
}

export class CredentialStore {
  readonly file: string;
  private readonly home: string;
  constructor(home: string) {
    this.home = home;
    this.file = clientFiles(home).credentials;
  }

  private read(): FileShape {
    if (!existsSync(this.file)) return { version: 1, default: null, servers: {} };
    const st = statSync(this.file);
    if ((st.mode & 0o077) !== 0 || (process.getuid && st.uid !== process.getuid())) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new CliError(`${this.file} is readable by other users (mode ${mode}) or not yours: OdooOps ignores it, as ssh ignores such a key`, EXIT.usage,
        `Run \`chmod 600 ${this.file}\` if it is yours; anyone who could read it may have copied its sessions, so then also \`odooops logout\` and \`odooops login\` again.`);
    }
    try {
      return FileShape.parse(JSON.parse(readFileSync(this.file, 'utf8')));
    } catch {
      throw new CliError(`${this.file} is not a credentials file OdooOps can read`, EXIT.usage, 'Remove it and sign in again: odooops login.');
    }
  }

  /**
   * Changes the file under a lock file: two CLI processes (one refreshing server X, one signing in to Y)
   * must not each write back what they read before the other's change, or X's rotated refresh token is
   * lost and its next refresh looks like a replay, which revokes the session. A lock older than 10 s is
   * a dead process's.
   */
  private update(change: (data: FileShape) => void): void {
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
    const lock = `${this.file}.lock`;
    const until = Date.now() + 5_000;
    for (;;) {
      try {
        closeSync(openSync(lock, 'wx', 0o600));
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        try {
          if (Date.now() - statSync(lock).mtimeMs > 10_000) rmSync(lock, { force: true });
        } catch {}
        if (Date.now() > until) throw new CliError(`${lock} stays locked: another process is writing the credentials`, EXIT.usage, `If none is running, remove ${lock}.`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
    try {
      const data = this.read();
      change(data);
      this.write(data);
    } finally {
      rmSync(lock, { force: true });
    }
  }

  private write(data: FileShape): void {
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  /** The server signed in to last. */
  defaultServer(): string | undefined {
    return this.read().default ?? undefined;
  }

  has(url: string): boolean {
    return serverKey(url) in this.read().servers;
  }

  /** Where a server's session is: 'file', or the keychain's name. */
  where(url: string): string | undefined {
    const entry = this.read().servers[serverKey(url)];
    return entry ? (entry.store === 'file' ? this.file : `the ${entry.keychain === 'security' ? 'macOS keychain' : 'secret service (secret-tool)'}`) : undefined;
  }

  /** One server's session, as client/session.ts keeps it. */
  storageFor(url: string, opts: { makeDefault?: boolean } = {}): SessionStorage {
    const key = serverKey(url);
    return {
      load: async () => {
        const entry = this.read().servers[key];
        if (!entry) return undefined;
        if (entry.store === 'file') return entry.session;
        const kc = entry.keychain === 'security' ? macKeychain : secretTool;
        const value = await kc.get(key);
        const parsed = value ? StoredSession.safeParse(JSON.parse(value)) : undefined;
        return parsed?.success ? parsed.data : undefined;
      },
      save: async (session) => {
        const kc = keychain();
        const inKeychain = Boolean(kc && (await kc.set(key, JSON.stringify(session))));
        // Read and written under the lock, after the keychain's await: only this server's entry changes.
        this.update((data) => {
          data.servers[key] = inKeychain ? { store: 'keychain', keychain: kc!.name } : { store: 'file', session };
          if (opts.makeDefault) data.default = key;
        });
      },
      clear: async () => {
        const entry = this.read().servers[key];
        if (entry?.store === 'keychain') await (entry.keychain === 'security' ? macKeychain : secretTool).delete(key);
        this.update((data) => {
          delete data.servers[key];
          if (data.default === key) data.default = Object.keys(data.servers)[0] ?? null;
        });
      },
    };
  }
}
