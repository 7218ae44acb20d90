// PLACEHOLDER (branch stores only): the s3 engineer's test/helpers/s3-stand-in.ts replaces this file at
// merge. s3rver, the named stand-in for hosted S3 (AWS S3, R2, B2, MinIO, Supabase Storage), on a free port.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
// @ts-expect-error s3rver ships no types
import S3rver from 's3rver';
import type { S3StoreConfig } from '../../server/storage/s3-store.ts';

export async function startS3StandIn(opts: { bucket?: string } = {}) {
  const bucket = opts.bucket ?? 'odooops-test';
  const directory = mkdtempSync(join(tmpdir(), 's3-stand-in-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
  const addr = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${addr.port}`;
  const region = 'us-east-1';
  const accessKeyId = 'S3RVER';
  const secretAccessKey = 'S3RVER';
  return {
    endpoint, region, bucket, accessKeyId, secretAccessKey, directory,
    async stop() {
      await server.close();
    },
    remove() {
      rmSync(directory, { recursive: true, force: true });
    },
    config(name = 's3'): S3StoreConfig {
      return { name, endpoint, region, bucket, forcePathStyle: true, accessKeyId, secretAccessKey };
    },
  };
}
