// yauzl ships no types and @types/yauzl is not installed: only what import-archive.ts uses.
declare module 'yauzl' {
  import type { EventEmitter } from 'node:events';
  import type { Readable } from 'node:stream';
  export interface Entry {
    fileName: string;
    compressedSize: number;
    uncompressedSize: number;
    externalFileAttributes: number;
    crc32: number;
    isEncrypted(): boolean;
  }
  export interface ZipFile extends EventEmitter {
    readEntry(): void;
    openReadStream(entry: Entry, cb: (err: Error | null, stream?: Readable) => void): void;
    close(): void;
  }
  export interface Options { lazyEntries?: boolean; autoClose?: boolean; strictFileNames?: boolean; validateEntrySizes?: boolean; decodeStrings?: boolean }
  export function open(path: string, options: Options, cb: (err: Error | null, zip?: ZipFile) => void): void;
  const yauzl: { open: typeof open };
  export default yauzl;
}
