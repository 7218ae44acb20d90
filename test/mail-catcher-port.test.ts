// The mail catcher's port across restarts: neutralized environments keep the catcher's address in their
// outgoing mail server, so a server restarted on the same OdooOps home listens where it listened before
// (kept in <home>/mail-catcher-port), and says so when another program has taken that port meanwhile.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { startServer } from '../server/app.ts';
import { homeFiles } from '../server/paths.ts';
import { tempHome } from './helpers/control-plane.ts';

const home = tempHome();
after(() => rmSync(home, { recursive: true, force: true }));

const start = async (logs: string[] = []) => startServer({ home, fast: true, worker: false, log: (m) => logs.push(m) });

test('a restarted server listens where it listened before; a port taken meanwhile is replaced and said', async () => {
  const first = await start();
  const port = first.mailCatcher!.port;
  await first.stop(500);
  assert.equal(Number(readFileSync(homeFiles(home).mailCatcherPort, 'utf8')), port, 'the port is kept in the home');

  const again = await start();
  try {
    assert.equal(again.mailCatcher!.port, port, 'the same port after a restart');
  } finally {
    await again.stop(500);
  }

  // Another program takes the port while the server is down.
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
  const logs: string[] = [];
  const third = await start(logs);
  try {
    assert.notEqual(third.mailCatcher!.port, port);
    assert.ok(logs.some((l) => l.includes(`port ${port}, where it listened before, is taken`) && /cloned or restored again/.test(l)), logs.join('\n'));
    assert.equal(Number(readFileSync(homeFiles(home).mailCatcherPort, 'utf8')), third.mailCatcher!.port, 'the new port is kept');
  } finally {
    await third.stop(500);
    squatter.close();
  }
});
