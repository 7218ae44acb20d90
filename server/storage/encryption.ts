// Encryption at rest for backup stores. What this module writes is what a user's encrypted backups
// are, for as long as they keep them: the format below never changes in place (a new format gets a
// new version byte, and readers keep reading the old one).
//
// Format, version 1 (all integers big-endian):
//
//   header, 52 bytes
//     magic    12 bytes  "ODOOOPS-ENC" 0x01 (the last byte is the format version)
//     key id    8 bytes  SHA-256("OdooOps-backup-key-id-v1" || master key)[0..8]
//     salt     32 bytes  random, new for every object
//   chunks, one or more
//     ciphertext  64 KiB (65536 bytes) for every chunk but the last, 0..65536 bytes for the last
//     tag         16 bytes (the GCM tag of this chunk)
//
//   data key  = HKDF-SHA256(ikm = master key, salt = salt, info = "OdooOps-backup-object" || 0x00 || name, 32 bytes)
//               where name is the object's key in the store (EncryptedStore; empty for a bare stream)
//   chunk i   = AES-256-GCM(data key, nonce_i, aad = the 52-byte header, plaintext bytes [i*64Ki, (i+1)*64Ki))
//   nonce_i   = i as an 11-byte counter || 0x01 for the last chunk, 0x00 for every other one
//
// This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015). The random salt gives
// every object its own data key, so (key, nonce) pairs never repeat across objects whatever the
// counter; the counter in the nonce makes reordering and dropping chunks fail the tag; the last-chunk
// flag makes cutting the object at a chunk boundary, or appending to it, fail too; the header is the
// AAD of every chunk, so changing any byte of it fails the first chunk. An empty plaintext is one
// empty last chunk (52 + 16 bytes). The key id lets a reader tell "written with another key" from
// "damaged" before it decrypts anything; it is a hash of the key, not the key. (When the id is not the
// reader's, the reader tries the first chunk with its own id in the header: if that verifies, only the
// id was damaged, and the object is reported damaged rather than written with another key.)
//
// Reading: a chunk's plaintext is handed on only after its tag verified. A sealed chunk that is the
// last in the object must verify with the last flag; one followed by more bytes without it. So a
// reader reports: not_encrypted (no magic), wrong_key (another key id), truncated (the object ends on a
// chunk sealed as not last, or inside its header), damaged (anything else that fails a tag).
//
// The object's key in the store is part of its data key: someone who can write to the bucket but has
// no key cannot put one encrypted object in place of another (a production dump over a masked clone's,
// one project's file over another's): it fails its first tag under its new name, before any byte is
// read as the object it pretends to be.
//
// Content objects (the filestore's files, named by their SHA-1, which anyone holding the same file can
// compute) are named by HMAC-SHA256(naming key, the SHA-1 as 40 lowercase hex characters) instead,
// with naming key = HKDF-SHA256(ikm = master key, salt = empty, info = "OdooOps-content-names", 32).
//
// Losing the master key loses every backup written with it: nothing here, and nobody, can read them
// without it.
import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { contentKeyOf, hashing, type BackupStore, type PutOptions, type StoredObject, type StoredPart } from './backup-store.ts';
import { InfraError } from '../infra/registry.ts';

const MAGIC = Buffer.from('ODOOOPS-ENC\x01', 'latin1');
const KEY_ID_BYTES = 8;
const SALT_BYTES = 32;
const HEADER_BYTES = MAGIC.length + KEY_ID_BYTES + SALT_BYTES;
const CHUNK = 64 * 1024;
const TAG = 16;
const SEALED = CHUNK + TAG;
const KEY_ID_LABEL = 'OdooOps-backup-key-id-v1';
const OBJECT_INFO = 'OdooOps-backup-object';
const NAMING_INFO = 'OdooOps-content-names';
/** The counter has 11 bytes; 6 of them (2^48 chunks of 64 KiB, 16 EiB) is more than any object. */
const MAX_CHUNKS = 2 ** 48;

export interface BackupKey {
  /** 16 hex characters: the key id written into every object's header. */
  id: string;
  /** 32 bytes. */
  key: Buffer;
}

export type BackupDecryptReason = 'wrong_key' | 'damaged' | 'truncated' | 'not_encrypted';

/** An encrypted object that cannot be read back; the message names the object (its key in the store), never a path or a key. */
export class BackupDecryptError extends Error {
  readonly reason: BackupDecryptReason;
  /** The object's key in the store. */
  readonly object: string;
  /** wrong_key: the id of the key the object was written with. */
  readonly writtenWith: string | undefined;
  constructor(reason: BackupDecryptReason, object: string, message: string, writtenWith?: string) {
    super(message);
    this.name = 'BackupDecryptError';
    this.reason = reason;
    this.object = object;
    this.writtenWith = writtenWith;
  }
}

function keyIdOf(key: Buffer): Buffer {
  return createHash('sha256').update(KEY_ID_LABEL).update(key).digest().subarray(0, KEY_ID_BYTES);
}

function backupKey(key: Buffer): BackupKey {
  return { id: keyIdOf(key).toString('hex'), key };
}

/** A key put together by hand with an id that is not its own would write headers that lie. */
function checked(key: BackupKey): BackupKey {
  if (key.key.length !== 32 || key.id !== keyIdOf(key.key).toString('hex')) throw new Error('invalid backup key: make it with parseBackupKey');
  return key;
}

/**
 * A key as the operator writes it (a file or env var holding 32 random bytes as base64 or hex, e.g.
 * `openssl rand -base64 32`). `what` names it in the error ("the key of backup store \"offsite\"");
 * the error never contains the text, which may be a real key with a typo in it.
 */
export function parseBackupKey(text: string, what: string): BackupKey {
  const t = text.trim();
  let bytes: Buffer | undefined;
  // Even-length hex is read as hex (a 32-byte key in base64 has 43 characters or a "=", so it never is).
  if (/^([0-9a-fA-F]{2})+$/.test(t)) bytes = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/]+={0,2}$/.test(t) || /^[A-Za-z0-9_-]+={0,2}$/.test(t)) {
    const b = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
    // Node's decoder skips what it does not understand; a round trip shows the text really was base64.
    if (b.toString('base64').replace(/=+$/, '') === t.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/')) bytes = b;
  }
  const make = 'make one with `openssl rand -base64 32`, put it where the registry points, and run odooops infra check';
  if (!bytes) throw new InfraError(`${what} is not a backup key: it is neither base64 nor hex; a backup key is 32 random bytes written as base64 or hex (${make})`);
  if (bytes.length !== 32) throw new InfraError(`${what} is not a backup key: it holds ${bytes.length} bytes, a backup key is 32 random bytes written as base64 or hex (${make})`);
  return backupKey(bytes);
}

function nonce(counter: number, last: boolean): Buffer {
  if (counter >= MAX_CHUNKS) throw new Error('encrypted object too large (more than 2^48 chunks)');
  const n = Buffer.alloc(12);
  n.writeUIntBE(counter, 5, 6);
  n[11] = last ? 1 : 0;
  return n;
}

/** A KeyObject, imported once: a raw key given to every chunk's cipher is imported again each time. */
function dataKey(master: Buffer, salt: Buffer, name: string): KeyObject {
  const info = name ? Buffer.concat([Buffer.from(OBJECT_INFO), Buffer.from([0]), Buffer.from(name, 'utf8')]) : OBJECT_INFO;
  return createSecretKey(Buffer.from(hkdfSync('sha256', master, salt, info, 32)));
}

/** Encrypts a stream in the format above; memory stays at one chunk whatever the size. */
export function encryptStream(key: BackupKey, name = ''): Transform {
  checked(key);
  const salt = randomBytes(SALT_BYTES);
  const header = Buffer.concat([MAGIC, Buffer.from(key.id, 'hex'), salt]);
  const dk = dataKey(key.key, salt, name);
  // What is left of the input when a callback returns is copied here: a writer may reuse its buffer
  // once its write completed, and a full chunk can be sealed only once more bytes follow (until then
  // it may be the last one).
  const pending = Buffer.alloc(CHUNK);
  let filled = 0;
  let counter = 0;
  let started = false;

  const seal = (t: Transform, plain: Buffer, last: boolean) => {
    const c = createCipheriv('aes-256-gcm', dk, nonce(counter++, last));
    c.setAAD(header);
    // Pushed apart: joining them would copy every chunk once more.
    t.push(c.update(plain));
    c.final();
    t.push(c.getAuthTag());
  };
  const start = (t: Transform) => {
    if (!started) t.push(header);
    started = true;
  };

  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        start(this);
        let at = 0;
        while (at < chunk.length) {
          if (filled === CHUNK) {
            seal(this, pending, false);
            filled = 0;
          }
          if (filled === 0 && chunk.length - at > CHUNK) {
            // Straight from the input, no copy: more of it follows, so this chunk is not the last.
            seal(this, chunk.subarray(at, at + CHUNK), false);
            at += CHUNK;
            continue;
          }
          const n = Math.min(CHUNK - filled, chunk.length - at);
          chunk.copy(pending, filled, at, at + n);
          filled += n;
          at += n;
        }
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        start(this);
        seal(this, pending.subarray(0, filled), true);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
}

/** Gathers incoming buffers and hands out exact-size runs of them, without copying. */
class Gather {
  private parts: Buffer[] = [];
  length = 0;
  add(b: Buffer): void {
    if (b.length) {
      this.parts.push(b);
      this.length += b.length;
    }
  }
  take(n: number): Buffer[] {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const p = this.parts[0]!;
      if (p.length <= need) {
        out.push(p);
        this.parts.shift();
        need -= p.length;
      } else {
        out.push(p.subarray(0, need));
        this.parts[0] = p.subarray(need);
        need = 0;
      }
    }
    this.length -= n;
    return out;
  }
  all(): Buffer[] {
    return this.take(this.length);
  }
}

/** A sealed chunk as the pieces it arrived in (a chunk rarely lines up with a read). */
type Sealed = Buffer[];
const sizeOf = (s: Sealed) => s.reduce((n, b) => n + b.length, 0);

/** The plaintext of one sealed chunk (in pieces), or null when its tag does not verify. */
function open(dk: KeyObject, header: Buffer, counter: number, last: boolean, sealed: Sealed): Buffer[] | null {
  const size = sizeOf(sealed);
  if (size < TAG) return null;
  const d = createDecipheriv('aes-256-gcm', dk, nonce(counter, last));
  d.setAAD(header);
  const pieces = new Gather();
  for (const p of sealed) pieces.add(p);
  const plain = pieces.take(size - TAG).map((p) => d.update(p));
  d.setAuthTag(Buffer.concat(pieces.all()));
  try {
    d.final();
  } catch {
    return null;
  }
  return plain;
}

/** How many bytes of the magic a header-sized start of an object shares with it. */
function magicLikeness(start: Buffer): number {
  let same = 0;
  for (let i = 0; i < MAGIC.length && i < start.length; i++) if (start[i] === MAGIC[i]) same++;
  return same;
}

/**
 * Decrypts a stream written by encryptStream. A chunk is emitted only after its tag verified, so a
 * consumer never sees a byte that was changed; the stream fails with BackupDecryptError at the first
 * chunk that does not verify. `label` (the object's key in the store) names the object in errors.
 */
export function decryptStream(key: BackupKey, label: string, name = ''): Transform {
  checked(key);
  const what = `backup object ${label}`;
  const elsewhere = 'restore from another backup (or another copy of this one)';
  const fail = (reason: BackupDecryptReason, message: string) => new BackupDecryptError(reason, label, message);
  const damaged = (detail: string) => fail('damaged', `${what} is damaged: ${detail}; it was changed or corrupted after it was written, so nothing of it past that point is used; ${elsewhere}`);
  const truncated = (detail: string) => fail('truncated', `${what} is truncated: ${detail} (an interrupted upload or copy); ${elsewhere}`);
  const notEncrypted = () => fail('not_encrypted', `${what} is not encrypted (it does not start with the OdooOps encryption header), but it is read through an encrypting store: it was written before encryption was turned on for this store, or by something else; read it through the store without encryption, or back up again`);

  const buf = new Gather();
  let header: Buffer | undefined;
  let dk: KeyObject | undefined;
  let counter = 0;
  // Set when the key id is not this key's: the first chunk then tells whether the id was damaged.
  let otherKeyId: string | undefined;

  const readHeader = (): void => {
    const h = Buffer.concat(buf.take(HEADER_BYTES));
    if (!h.subarray(0, MAGIC.length).equals(MAGIC)) {
      // Eight of twelve bytes right by chance is far beyond what a dump or an archive does: that is a damaged header.
      if (magicLikeness(h.subarray(0, MAGIC.length - 1)) === MAGIC.length - 1) {
        throw damaged(`its header marks format version ${h[MAGIC.length - 1]}, which this OdooOps does not read (a damaged header, or an object written by a newer OdooOps)`);
      }
      if (magicLikeness(h) >= 8) throw damaged('its header (the format marker) is not what OdooOps writes');
      throw notEncrypted();
    }
    const id = h.subarray(MAGIC.length, MAGIC.length + KEY_ID_BYTES).toString('hex');
    dk = dataKey(key.key, h.subarray(MAGIC.length + KEY_ID_BYTES), name);
    header = h;
    if (id !== key.id) {
      otherKeyId = id;
      // Verified against the header as it would be with this key's id: if the chunk then verifies, only the id was damaged.
      header = Buffer.concat([MAGIC, Buffer.from(key.id, 'hex'), h.subarray(MAGIC.length + KEY_ID_BYTES)]);
    }
  };
  const wrongKey = (id: string) =>
    new BackupDecryptError('wrong_key', label, `${what} was encrypted with key ${id}, the key given is ${key.id}: it is not the one this object was written with; without that key it cannot be read`, id);

  const openNext = (sealed: Sealed, atEnd: boolean): Buffer[] => {
    const i = counter;
    const asExpected = open(dk!, header!, i, atEnd, sealed);
    if (asExpected) {
      if (otherKeyId) throw damaged(`its header names key ${otherKeyId}, but its chunks were written with key ${key.id}`);
      counter++;
      return asExpected;
    }
    if (otherKeyId) throw wrongKey(otherKeyId);
    const asOther = open(dk!, header!, i, !atEnd, sealed);
    if (asOther && atEnd) throw truncated(`it ends after chunk ${i + 1} without its last chunk`);
    if (asOther) throw damaged(`it goes on after its last chunk (chunk ${i + 1})`);
    throw damaged(`chunk ${i + 1} (from byte ${HEADER_BYTES + i * SEALED}) fails its authentication check`);
  };

  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        buf.add(chunk);
        if (!header && buf.length >= HEADER_BYTES) readHeader();
        // More than one sealed chunk buffered: the first is not the last one.
        while (header && buf.length > SEALED) for (const p of openNext(buf.take(SEALED), false)) this.push(p);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        if (!header) {
          const start = Buffer.concat(buf.all());
          if (start.length > 0 && magicLikeness(start) === Math.min(start.length, MAGIC.length)) throw truncated(`it ends inside its header (${start.length} bytes)`);
          throw notEncrypted();
        }
        const rest = buf.all();
        const size = sizeOf(rest);
        if (size === 0) {
          if (otherKeyId) throw wrongKey(otherKeyId);
          throw truncated(counter === 0 ? 'it has a header and no chunk' : `it ends after chunk ${counter} without its last chunk`);
        }
        if (size < TAG && !otherKeyId) throw truncated(`it ends inside chunk ${counter + 1}`);
        for (const p of openNext(rest, true)) this.push(p);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
}

/** The key that names content objects: a different key from the data keys, for a different purpose. */
function namingKey(master: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), NAMING_INFO, 32));
}

/** A BackupStore that encrypts what it puts and decrypts what it gets. */
export class EncryptedStore implements BackupStore {
  readonly name: string;
  readonly authenticates = true;
  private readonly inner: BackupStore;
  private readonly key: BackupKey;
  /**
   * A KeyObject, not the key's bytes: createHmac with a Buffer key first asks whether it is a KeyObject or
   * a CryptoKey, by exceptions thrown and caught inside Node (v24), which cost eight times the HMAC itself
   * on every file a backup looks up (2.6 s of the worker's 30 s in bench:backup's first backup).
   */
  private readonly naming: KeyObject;

  constructor(inner: BackupStore, key: BackupKey) {
    this.inner = inner;
    this.key = checked(key);
    this.name = inner.name;
    this.naming = createSecretKey(namingKey(key.key));
  }

  locationOf(key: string): string {
    return this.inner.locationOf(key);
  }

  /** Size and SHA-256 of the plaintext: what manifests record and what verify compares after decrypting. */
  async put(key: string, data: Readable, signal?: AbortSignal, opts: PutOptions = {}): Promise<StoredPart> {
    const h = hashing({ algorithm: opts.digest === false ? 'none' : 'sha256' });
    // The inner put reports any failure (the source's, the encryption's, its own) and cleans up after it.
    const encrypted = pipeline(data, h, encryptStream(this.key, key), () => {});
    try {
      await this.inner.put(key, encrypted, signal, { digest: false });
    } catch (err) {
      // An inner put that failed before reading (an invalid key) would leave the source open for ever.
      encrypted.destroy(err as Error);
      throw err;
    }
    return h.result();
  }

  /**
   * The plaintext. Resolves once the first chunk verified (or the object ended), so a wrong key, a
   * plain object or a damaged start rejects here, before a caller has touched anything; damage further
   * on fails the stream at that chunk, before any of its bytes.
   */
  async get(key: string): Promise<Readable> {
    const plain = pipeline(await this.inner.get(key), decryptStream(this.key, key, key), () => {});
    const chunks = plain[Symbol.asyncIterator]();
    let first: IteratorResult<Buffer>;
    try {
      first = await chunks.next();
    } catch (err) {
      if (err instanceof BackupDecryptError && err.reason === 'wrong_key') {
        throw new BackupDecryptError(
          'wrong_key',
          key,
          `backup object ${key} was encrypted with key ${err.writtenWith}, this store's key is ${this.key.id}: the registry's key for store ${this.name} is not the one these backups were written with; without that key they cannot be read`,
          err.writtenWith,
        );
      }
      throw err;
    }
    const rest: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => chunks };
    return Readable.from(
      (async function* () {
        if (first.done) return;
        yield first.value;
        // yield* hands a consumer's early stop to the decrypting stream, which then closes the inner one.
        yield* rest;
      })(),
      { objectMode: false },
    );
  }

  exists(key: string): Promise<boolean> {
    return this.inner.exists(key);
  }

  /** Never a path: the file on disk is ciphertext, so callers stream through get(). */
  localPath(_key: string): string | undefined {
    return undefined;
  }

  remove(prefix: string): Promise<void> {
    return this.inner.remove(prefix);
  }

  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }

  walk(prefix: string): AsyncIterable<StoredObject> {
    return this.inner.walk(prefix);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  /** The plaintext size of an object of `stored` bytes: a header, then chunks of at most 64 KiB, each with its tag. */
  plainSize(stored: number): number {
    const rest = stored - HEADER_BYTES;
    if (rest <= TAG) return Math.max(0, rest - TAG);
    return rest - TAG * Math.ceil(rest / (CHUNK + TAG));
  }

  async abortIncompleteUploads(prefix: string, olderThan?: Date, keep?: (key: string) => boolean): Promise<number> {
    return (await this.inner.abortIncompleteUploads?.(prefix, olderThan, keep)) ?? 0;
  }

  /** Named by a keyed hash of the SHA-1: a listing of the store does not tell which (public) files a project has. */
  contentKey(projectId: string, sha1: string): string {
    if (!/^[0-9a-f]{40}$/.test(sha1)) throw new Error(`invalid content name: ${sha1}`);
    return contentKeyOf(projectId, createHmac('sha256', this.naming).update(sha1).digest('hex'));
  }
}
