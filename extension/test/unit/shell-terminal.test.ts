// The Pseudoterminal behind Open shell / Open psql / Open Odoo shell: what it asks the server for, how bytes
// and sizes go through, how it closes (the exit code; a refusal or a lost connection is said in the
// terminal and the next key closes it). The server side is test/shell.test.ts; here a connection double
// records what the adapter does, and one real websocket (a stand-in for /api/shell that drops the
// connection) shows that a drop is noticed through client/shell.ts.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'mocha';
import { WebSocketServer } from 'ws';
import type { ShellConnection, ShellHandlers, ShellRequest } from '../../../client/shell.ts';
import { productionQuestion, ShellTerminal, shellTerminalLook } from '../../src/shellTerminal.ts';

/** Test double of the websocket connection: records the request and what the terminal sends. */
function connectionDouble() {
  const sent: (string | Uint8Array)[] = [];
  const sizes: [number, number][] = [];
  let closed = 0;
  let req: ShellRequest | undefined;
  let handlers: ShellHandlers | undefined;
  const connect = (r: ShellRequest, h: ShellHandlers): ShellConnection => {
    req = r;
    handlers = h;
    return { write: (d) => void sent.push(d), resize: (c, r2) => void sizes.push([c, r2]), pause() {}, resume() {}, close: () => void closed++ };
  };
  return { connect, sent, sizes, get closed() { return closed; }, get req() { return req; }, get h() { return handlers!; } };
}

function terminal(over: Partial<ConstructorParameters<typeof ShellTerminal>[0]> = {}) {
  const wire = connectionDouble();
  const pty = new ShellTerminal({ url: 'http://127.0.0.1:1', token: async () => 'tok', project: 'acme', environment: 'dev-x', kind: 'psql', connect: wire.connect, ...over });
  let screen = '';
  const closes: (number | void)[] = [];
  pty.onDidWrite((s) => (screen += s));
  pty.onDidClose((c) => void closes.push(c));
  return { pty, wire, closes, screen: () => screen };
}
const tick = () => new Promise((r) => setTimeout(r, 10));

describe('Shell terminal (Pseudoterminal over the shell websocket)', () => {
  it('asks for the kind and the terminal size only; bytes and sizes go through; it closes with the exit code', async () => {
    const t = terminal();
    t.pty.open({ columns: 120, rows: 40 });
    await tick();
    assert.deepEqual(t.wire.req, { url: 'http://127.0.0.1:1', token: 'tok', project: 'acme', environment: 'dev-x', kind: 'psql', cols: 120, rows: 40 });
    assert.match(t.screen(), /Connecting to acme\/dev-x \(psql\)/);
    t.wire.h.opened({ type: 'opened', session: 7, kind: 'psql', project: 'acme', environment: 'dev-x', stage: 'development', where: 'psql on acme_dev', idleSeconds: 1800, recorded: false });
    assert.match(t.screen(), /psql on acme_dev \(development\); ends after 30 min without input/);
    // A character split across two frames is still one character.
    const e = Buffer.from('café\r\n');
    t.wire.h.output(e.subarray(0, 4));
    t.wire.h.output(e.subarray(4));
    assert.ok(t.screen().endsWith('café\r\n'), JSON.stringify(t.screen()));
    t.pty.handleInput('select 1;\r');
    t.pty.setDimensions({ columns: 100, rows: 30 });
    assert.deepEqual(t.wire.sent, ['select 1;\r']);
    assert.deepEqual(t.wire.sizes, [[100, 30]]);
    t.wire.h.exit({ type: 'exit', code: 3, reason: 'exited' });
    assert.deepEqual(t.closes, [3]);
    assert.equal(t.pty.exitCode, 3);
  });

  it('production: the confirmation goes with the request; the server ending it says why', async () => {
    const t = terminal({ environment: 'production', kind: 'shell', confirmProduction: true });
    t.pty.open(undefined);
    await tick();
    assert.equal(t.wire.req?.confirmProduction, true);
    assert.deepEqual([t.wire.req?.cols, t.wire.req?.rows], [80, 24]);
    t.wire.h.exit({ type: 'exit', code: null, reason: 'idle: no input for 1800 s' });
    assert.match(t.screen(), /the session ended: idle: no input for 1800 s/);
    assert.deepEqual(t.closes, [1]);
  });

  it('a refusal is written in the terminal with the hint, and the next key closes it', async () => {
    const t = terminal();
    t.pty.open({ columns: 80, rows: 24 });
    await tick();
    t.wire.h.error({ type: 'error', code: 'forbidden', message: 'your role on project acme may not open shells on the staging environment', hint: 'developers on development' });
    assert.match(t.screen(), /may not open shells on the staging environment\r\n.*developers on development/s);
    assert.deepEqual(t.closes, [], 'still open, so that it can be read');
    t.pty.handleInput('x');
    assert.deepEqual(t.closes, [1]);
    assert.deepEqual(t.wire.sent, [], 'the key is not sent anywhere');
  });

  it('closing the terminal closes the connection (the server then ends the session)', async () => {
    const t = terminal();
    t.pty.open({ columns: 80, rows: 24 });
    await tick();
    t.pty.close();
    assert.equal(t.wire.closed, 1);
  });

  it('a dropped connection says so (a real websocket that the other side cuts)', async () => {
    // A stand-in for the server's /api/shell: takes the open frame, answers opened, then drops the socket.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    wss.on('connection', (ws) => ws.once('message', () => {
      ws.send(JSON.stringify({ type: 'opened', session: 1, kind: 'shell', project: 'acme', environment: 'dev-x', stage: 'development', where: 'bash', idleSeconds: 60, recorded: false }));
      setTimeout(() => ws.terminate(), 50);
    }));
    await new Promise((r) => wss.once('listening', r));
    try {
      const pty = new ShellTerminal({ url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, token: async () => 'tok', project: 'acme', environment: 'dev-x', kind: 'shell' });
      let screen = '';
      const closes: (number | void)[] = [];
      pty.onDidWrite((s) => (screen += s));
      pty.onDidClose((c) => void closes.push(c));
      pty.open({ columns: 80, rows: 24 });
      const until = Date.now() + 5000;
      while (!pty.failure && Date.now() < until) await tick();
      assert.match(screen, /bash \(development\)/);
      assert.match(screen, /The connection to the OdooOps server was lost \(the connection closed \(1006\)\)/);
      assert.deepEqual(closes, []);
      pty.handleInput('\r');
      assert.deepEqual(closes, [1]);
    } finally {
      await new Promise((r) => wss.close(r));
    }
  });

  it('looks: production red, staging and development yellow; the production question names project and environment', () => {
    assert.deepEqual(shellTerminalLook('acme', 'production', 'production', 'odoo'), { name: 'OdooOps Odoo shell: acme/production', color: 'terminal.ansiRed' });
    assert.equal(shellTerminalLook('acme', 'staging', 'staging', 'shell').color, 'terminal.ansiYellow');
    assert.equal(shellTerminalLook('acme', 'dev-x', 'development', 'psql').color, 'terminal.ansiYellow');
    const q = productionQuestion('acme', 'production', 'psql');
    assert.match(q.message, /psql on production: acme › production\?/);
    assert.match(q.detail, /recorded/);
  });
});
