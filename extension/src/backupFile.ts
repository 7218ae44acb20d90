// What the extension's save dialog proposes for a downloaded backup: the name the server and the CLI
// give it (C.backupFileName), so a file saved from the editor and one from `odooops backup download`
// look alike. No vscode import: unit-tested on its own.
import * as C from '../../contract/index.ts';

export const downloadName = (b: C.Backup, env: string): string => C.backupFileName(b.database ?? env, b.createdAt);
