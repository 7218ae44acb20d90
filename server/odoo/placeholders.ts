// Stand-ins for business documents a clone does not copy (filestore policy "placeholders"): each such
// attachment keeps its record but points to one small file, an image for images (Odoo resizes and
// shows them) and a text for everything else, stored under their SHA-1 as Odoo's filestore does.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';

interface Placeholder {
  fname: string;
  sha1: string;
  content: Buffer;
  mimetype: string;
}

function placeholder(content: Buffer, mimetype: string): Placeholder {
  const sha1 = createHash('sha1').update(content).digest('hex');
  return { fname: `${sha1.slice(0, 2)}/${sha1}`, sha1, content, mimetype };
}

const TEXT = placeholder(Buffer.from(
  'This document was not copied from production: OdooOps clones keep business documents in production and put this\n' +
  'placeholder in their place. Clone with the filestore policy "all" to copy them.\n',
), 'text/plain');
// A 1x1 grey PNG.
const IMAGE = placeholder(Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGM4AAAAwgDBUl5XUQAAAABJRU5ErkJggg==', 'base64'), 'image/png');

/** ir_attachment columns for a row whose file stays behind, as SQL over the source row. */
export function placeholderColumns(): Record<string, string> {
  const choose = (image: string | number, text: string | number) => {
    const q = (v: string | number) => (typeof v === 'number' ? String(v) : pg.escapeLiteral(v));
    return `case when coalesce(mimetype, '') like 'image/%' then ${q(image)} else ${q(text)} end`;
  };
  return {
    store_fname: choose(IMAGE.fname, TEXT.fname),
    checksum: choose(IMAGE.sha1, TEXT.sha1),
    file_size: choose(IMAGE.content.length, TEXT.content.length),
    mimetype: choose(IMAGE.mimetype, TEXT.mimetype),
    db_datas: 'null',
  };
}

/** Writes the placeholder files under dir (a filestore layout); returns their store_fname paths. */
export async function writePlaceholders(dir: string): Promise<string[]> {
  for (const p of [TEXT, IMAGE]) {
    await mkdir(dirname(join(dir, p.fname)), { recursive: true });
    await writeFile(join(dir, p.fname), p.content);
  }
  return [TEXT.fname, IMAGE.fname];
}
