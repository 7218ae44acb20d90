// A tool's output as lines, for run logs (odoo-bin's update and build, pip): stdout and stderr each in
// order, a last line without its newline included.
import type { ChildProcess } from 'node:child_process';

/** Lines of a child's stdout and stderr to `out`, in order per stream; resolves with its exit code. */
export async function linesOf(child: ChildProcess, out: (line: string) => Promise<void>, what: string): Promise<number | null> {
  const lines = async (stream: NodeJS.ReadableStream | null) => {
    if (!stream) return;
    let rest = '';
    for await (const chunk of stream) {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop()!;
      for (const l of parts) await out(l);
    }
    if (rest) await out(rest);
  };
  return new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`${what} could not run: ${err.message}`)));
    Promise.all([lines(child.stdout), lines(child.stderr)])
      .then(() => child.exitCode ?? (child.signalCode ? null : new Promise<number | null>((r) => child.once('close', (code) => r(code)))))
      .then(resolve, reject);
  });
}
