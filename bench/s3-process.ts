// The S3 stand-in (s3rver, test/helpers/s3-stand-in.ts) in a process of its own, so a benchmark's client and
// worker do not share an event loop with the service they upload to (as they would not with S3). Prints its
// connection as one JSON line; stops when its stdin closes.
import { startS3StandIn } from '../test/helpers/s3-stand-in.ts';

const s3 = await startS3StandIn({ bucket: 'bench-backups' });
process.stdout.write(`${JSON.stringify({ endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, directory: s3.directory })}\n`);
process.stdin.resume();
process.stdin.on('end', () => void s3.stop().finally(() => process.exit(0)));
