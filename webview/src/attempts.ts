// Where a run's attempts begin. The worker starts every attempt with one line of the server's own
// ('system' stream, server/worker/worker.ts): "<kind> on <environment> (<stage>), attempt 2 of 3, worker
// <id>". Executors cannot write to that stream, so a run's output cannot fake a separator.
export interface AttemptStart {
  attempt: number;
  of: number;
}

const ATTEMPT = /, attempt (\d+) of (\d+), worker \S/;

export function attemptStart(stream: string, line: string): AttemptStart | null {
  if (stream !== 'system') return null;
  const m = ATTEMPT.exec(line);
  return m ? { attempt: Number(m[1]), of: Number(m[2]) } : null;
}
