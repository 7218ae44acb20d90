// PLACEHOLDER (branch stores only): the crypto engineer's server/storage/encryption.ts replaces this file
// at merge. Same exported signatures; a minimal AES-256-GCM chunked format so the stores' tests can run.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupStore, StoredObject, StoredPart } from './backup-store.ts';
import { contentKeyOf, hashing } from './backup-store.ts';

export interface BackupKey { id: string; key: Buffer }

export function parseBackupKey(text: string, what: string): BackupKey {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32 || !/^[A-Za-z0-9+/]+=*$/.test(text.trim())) {
    throw new Error(`${what} is not a 256-bit key in base64 (make one: openssl rand -base64 32 > /etc/odooops/backup.key; chmod 600 /etc/odooops/backup.key)`);
  }
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 16), key };
}

const CHUNK = 64 * 1024;
const MAGIC = Buffer.from('OOENC1\n');

export class EncryptedStore implements BackupStore {
  readonly name: string;
  private readonly inner: BackupStore;
  private readonly k: BackupKey;
  constructor(inner: BackupStore, key: BackupKey) {
    this.inner = inner;
    this.k = key;
    this.name = inner.name;
  }
  locationOf(key: string): string { return this.inner.locationOf(key); }
  async put(key: string, data: Readable, signal?: AbortSignal): Promise<StoredPart> {
    const h = hashing();
    const k = this.k.key;
    let buf = Buffer.alloc(0);
    let index = 0;
    const seal = (plain: Buffer, last: boolean) => {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', k, iv);
      c.setAAD(Buffer.from(`${index++}:${last ? 1 : 0}`));
      const body = Buffer.concat([c.update(plain), c.final()]);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      return Buffer.concat([Buffer.from([last ? 1 : 0]), iv, len, body, c.getAuthTag()]);
    };
    let started = false;
    const enc = new Transform({
      transform(chunk: Buffer, _e, cb) {
        if (!started) { started = true; this.push(MAGIC); }
        buf = Buffer.concat([buf, chunk]);
        while (buf.length > CHUNK) { this.push(seal(buf.subarray(0, CHUNK), false)); buf = buf.subarray(CHUNK); }
        cb();
      },
      flush(cb) {
        if (!started) this.push(MAGIC);
        this.push(seal(buf, true));
        cb();
      },
    });
    // A failing source (pg_dump dying) must fail the inner put, which then leaves nothing behind.
    data.on('error', (e) => enc.destroy(e));
    await this.inner.put(key, data.pipe(h).pipe(enc), signal);
    return h.result();
  }
  async get(key: string): Promise<Readable> {
    const src = await this.inner.get(key);
    const k = this.k.key;
    let buf = Buffer.alloc(0);
    let index = 0;
    let magic = false;
    let done = false;
    const dec = new Transform({
      transform(chunk: Buffer, _e, cb) {
        buf = Buffer.concat([buf, chunk]);
        try {
          if (!magic) {
            if (buf.length < MAGIC.length) return cb();
            if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`backup object ${key} is not encrypted with OdooOps' format`);
            buf = buf.subarray(MAGIC.length);
            magic = true;
          }
          while (buf.length >= 17) {
            const len = buf.readUInt32BE(13);
            if (buf.length < 17 + len + 16) break;
            const last = buf[0] === 1;
            const d = createDecipheriv('aes-256-gcm', k, buf.subarray(1, 13));
            d.setAAD(Buffer.from(`${index++}:${last ? 1 : 0}`));
            d.setAuthTag(buf.subarray(17 + len, 33 + len));
            this.push(Buffer.concat([d.update(buf.subarray(17, 17 + len)), d.final()]));
            buf = buf.subarray(33 + len);
            if (last) done = true;
          }
          cb();
        } catch (err) {
          cb(new Error(`backup object ${key} cannot be decrypted with this key (a wrong key, or the object was changed): ${(err as Error).message}`));
        }
      },
      flush(cb) {
        cb(done && buf.length === 0 ? null : new Error(`backup object ${key} is cut short (or was changed)`));
      },
    });
    void pipeline(src, dec).catch((err) => dec.destroy(err));
    return dec;
  }
  exists(key: string): Promise<boolean> { return this.inner.exists(key); }
  localPath(_key: string): string | undefined { return undefined; }
  remove(prefix: string): Promise<void> { return this.inner.remove(prefix); }
  list(prefix: string): Promise<string[]> { return this.inner.list(prefix); }
  walk(prefix: string): AsyncIterable<StoredObject> { return this.inner.walk(prefix); }
  delete(key: string): Promise<void> { return this.inner.delete(key); }
  contentKey(projectId: string, sha1: string): string {
    return contentKeyOf(projectId, createHmac('sha256', this.k.key).update(sha1).digest('hex'));
  }
}
