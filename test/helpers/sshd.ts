// A real sshd on loopback standing for another host (an ssh runtime's): its own host key, one authorized
// client key, root by key only. The tests of deploys, shells and the Odoo log over ssh each start one.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../server/db/embedded.ts';
import { eventually } from './control-plane.ts';

export interface LoopbackSshd {
  port: number;
  /** The private key root@127.0.0.1 accepts (give it to the run user before use). */
  clientKey: string;
  process: ChildProcess;
}

/** Starts sshd -D with everything in `dir` (made here), listening once it resolves. Stop it with process.kill(). */
export async function startLoopbackSshd(dir: string): Promise<LoopbackSshd> {
  mkdirSync(dir);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  const port = await freePort();
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no',
    `PidFile ${join(dir, 'sshd.pid')}`, '',
  ].join('\n'));
  mkdirSync('/run/sshd', { recursive: true });
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
  try {
    await eventually('sshd to listen', async () => new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1', () => (c.end(), r(true))).on('error', () => r(false));
    }));
  } catch (err) {
    sshd.kill();
    throw err;
  }
  return { port, clientKey: join(dir, 'client_key'), process: sshd };
}
