// tar-stream's pack and extract, and a pack's entries, are streamx streams. Destroyed from outside (a
// pipeline aborted by a cancelled run, a reader that went away, a for-await left by a throw) they emit
// 'error' a tick later, when often nothing listens any more: an uncaught exception, which ends the
// worker's process (a cancelled restore did so). Their failures always reach the code elsewhere (an
// entry's callback, the Node stream in front of a pack, the for-await over an extract), so these
// streams are made here, each with a listener that only absorbs the late event.
import { PassThrough, type Readable } from 'node:stream';
import * as tarStream from 'tar-stream';

const absorb = <T extends { on(event: 'error', listener: (err: Error) => void): unknown }>(s: T): T => {
  s.on('error', () => {});
  return s;
};

export type TarHeader = Parameters<tarStream.Pack['entry']>[0];
export type TarEntrySink = ReturnType<tarStream.Pack['entry']>;

/** A tar being written, read through `out` (a Node stream). */
export function tarPack(): {
  pack: tarStream.Pack;
  out: PassThrough;
  /** An entry of `data`, or one written to `sink` when no data is given; `done` settles when the entry is in the tar. */
  entry(header: TarHeader, data?: Buffer): { sink: TarEntrySink; done: Promise<void> };
} {
  const pack = absorb(tarStream.pack());
  const out = new PassThrough();
  pack.pipe(out);
  return {
    pack,
    out,
    entry(header, data) {
      let sink!: TarEntrySink;
      const done = new Promise<void>((resolve, reject) => {
        const cb = (err?: Error | null) => (err ? reject(err) : resolve());
        sink = absorb(data ? pack.entry(header, data, cb) : pack.entry(header, cb));
      });
      done.catch(() => {});
      return { sink, done };
    },
  };
}

/** The entries of the tar `src` streams (a failure of `src` ends the iteration with its error). */
export function tarExtract(src: Readable): tarStream.Extract {
  const extract = absorb(tarStream.extract());
  src.on('error', (err) => extract.destroy(err));
  src.pipe(extract as unknown as NodeJS.WritableStream);
  return extract;
}
