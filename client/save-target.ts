// Whether a download can be saved where it was asked to, checked before anything is requested: a
// folder that does not exist (or cannot be written) would otherwise end the download after its first
// bytes with an ENOENT that "run the command again" cannot cure.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

export interface SaveProblem {
  message: string;
  /** What to do about it (choose another place, make the folder). */
  hint: string;
}

const code = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

/** null when `file` can be written (made or replaced, through its `.part` beside it); else why not. */
export async function saveProblem(file: string): Promise<SaveProblem | null> {
  const path = resolve(file);
  const dir = dirname(path);
  const other = 'Choose another folder';
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) return { message: `cannot save into ${dir}: it is a file, not a folder`, hint: `${other}.` };
  } catch (err) {
    if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') {
      return { message: `the folder ${dir} does not exist`, hint: `${other}, or create it first (mkdir -p '${dir}').` };
    }
    return { message: `cannot use the folder ${dir} (${code(err)})`, hint: `${other}.` };
  }
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    return { message: `cannot write into the folder ${dir} (${code(err)})`, hint: `${other}, one you may write into.` };
  }
  try {
    const s = await stat(path);
    if (s.isDirectory()) return { message: `${path} is a folder`, hint: 'Name a file inside it, e.g. backup.zip.' };
  } catch (err) {
    if (code(err) !== 'ENOENT') return { message: `cannot use ${path} (${code(err)})`, hint: `${other}.` };
  }
  return null;
}
