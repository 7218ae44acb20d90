// The operator's infrastructure registry on its own (server/infra/registry.ts): how a file is read and
// refused, and how a name becomes a connection, a path, a runtime or a git transport only for a project
// the entry is bound to. Plus git itself refusing a transport the registry did not allow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchRepository } from '../server/deploy/git.ts';
import { SshOdoo } from '../server/deploy/ssh-odoo.ts';
import { gitProtocolOf, globRegex, Infrastructure, InfraError, type SshRuntime } from '../server/infra/registry.ts';
import type { EnvironmentRow } from '../server/rows.ts';

const scratch = mkdtempSync(join(tmpdir(), 'odooops-registry-'));
const file = (name: string, text: string) => {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
};
const refused = (fn: () => unknown, message: RegExp) => assert.throws(fn, (err: Error) => {
  assert.ok(err instanceof InfraError, `an InfraError, not ${err.constructor.name}: ${err.message}`);
  assert.match(err.message, message);
  return true;
});

mkdirSync(join(scratch, 'files', 'acme_prod'), { recursive: true });
symlinkSync(join(scratch, 'files'), join(scratch, 'files-link'));
const registry = Infrastructure.load(file('infra.yaml', `
databaseServers:
  prod-pg: { host: 10.0.0.5, port: 5432, user: odoo, password: "env:REGISTRY_TEST_PW", databases: ["acme_*"], projects: [acme] }
  open-pg: { host: 10.0.0.6, projects: ["*"] }
  file-pg: { host: 10.0.0.7, password: "file:${join(scratch, 'no-such-file')}", projects: [acme] }
filestoreRoots:
  main: { path: ${join(scratch, 'files-link')}, projects: [acme] }
  gone: { path: ${join(scratch, 'not-there')}, projects: [acme] }
runtimes:
  odoo17: { kind: local, odooBin: /opt/odoo/odoo-bin, httpPorts: [8069, 8079], projects: [acme] }
repositories:
  acme: { url: "git@github.com:acme/*.git", projects: [acme] }
  mirror: { url: "/srv/git/**", projects: [acme] }
`));

test('a name resolves only for a project it is bound to; the password comes from where the operator said', () => {
  process.env.REGISTRY_TEST_PW = 's3cret-Registry-Pw';
  try {
    assert.deepEqual(registry.database('prod-pg', 'acme_prod', 'acme'), { server: 'prod-pg', host: '10.0.0.5', port: 5432, user: 'odoo', password: 's3cret-Registry-Pw', database: 'acme_prod' });
    refused(() => registry.database('prod-pg', 'acme_prod', 'evil'), /the database server "prod-pg" of the registry is not bound to project evil/);
    refused(() => registry.database('nope', 'x', 'acme'), /this worker's registry has no database server "nope"/);
    refused(() => registry.database(null, 'x', 'acme'), /names no database server/);
    // The server's database names: its own pattern, never the server's own databases or OdooOps' side ones.
    refused(() => registry.database('prod-pg', 'other_prod', 'acme'), /the database "other_prod" is not one project acme may use/);
    for (const db of ['postgres', 'template1', 'x_odooops_new_1']) refused(() => registry.database('open-pg', db, 'evil'), /is not one project evil may use/);
    assert.equal(registry.database('open-pg', 'evil_prod', 'evil').host, '10.0.0.6', '"*" binds every project');
  } finally {
    delete process.env.REGISTRY_TEST_PW;
  }
  // Where the secret was supposed to be is the operator's business: the error names the server only.
  for (const [server, db] of [['prod-pg', 'acme_x'], ['file-pg', 'acme_x']] as const) {
    assert.throws(() => registry.database(server, db, 'acme'), (err: Error) => {
      assert.match(err.message, new RegExp(`the password of database server "${server}" is not available on this worker`));
      assert.ok(!err.message.includes('REGISTRY_TEST_PW') && !err.message.includes(scratch), err.message);
      return true;
    });
  }
});

test('filestores are <root>/<database> with the root resolved; a symbolic link or a missing root is refused', () => {
  assert.equal(registry.filestore('main', 'acme_prod', 'acme'), join(scratch, 'files', 'acme_prod'), 'the root\'s own link is resolved');
  assert.equal(registry.filestore('main', 'acme_new', 'acme'), join(scratch, 'files', 'acme_new'), 'not there yet: a restore creates it');
  assert.equal(registry.filestore(null, 'acme_prod', 'acme'), null);
  symlinkSync('/etc', join(scratch, 'files', 'acme_link'));
  refused(() => registry.filestore('main', 'acme_link', 'acme'), /is a symbolic link; OdooOps only acts on real directories inside a registered root/);
  for (const db of ['..', '../x', 'a/b', '.hidden']) refused(() => registry.filestore('main', db, 'acme'), /cannot name a filestore directory/);
  refused(() => registry.filestore('gone', 'acme_prod', 'acme'), /the filestore root "gone" does not exist on this worker/);
  refused(() => registry.filestore('main', 'acme_prod', 'evil'), /not bound to project evil/);
});

test('repositories: globs within a path segment (*) or across (**), the transport of the URL, no ".." segments', () => {
  assert.deepEqual(registry.repository('git@github.com:acme/addons.git', 'acme'), { entry: 'acme', protocols: ['ssh'] });
  assert.deepEqual(registry.repository('/srv/git/team/addons.git', 'acme'), { entry: 'mirror', protocols: ['file'] });
  refused(() => registry.repository('git@github.com:acme/sub/addons.git', 'acme'), /is not allowed for project acme/);
  refused(() => registry.repository('git@github.com:other/addons.git', 'acme'), /is not allowed/);
  refused(() => registry.repository('git@github.com:acme/addons.git', 'evil'), /is not allowed for project evil/);
  refused(() => registry.repository('/srv/git/../../etc/shadow.git', 'acme'), /"\." or "\.\." path segments/);
  assert.equal(new RegExp(globRegex('https://x.example/a.b/*')).test('https://x.example/aXb/c'), false, 'a dot is a dot');
  assert.deepEqual(['https://h/r', 'ssh://h/r', 'git@h:r', '/srv/r', 'file:///srv/r', 'ext::sh -c x'].map(gitProtocolOf), ['https', 'ssh', 'ssh', 'file', 'file', 'ext']);
});

test('what the API may show: names, kinds, descriptions and bindings, never a password or its reference', () => {
  const entries = registry.entries();
  assert.deepEqual(entries.map((e) => `${e.kind}:${e.name}`), [
    'database_server:file-pg', 'database_server:open-pg', 'database_server:prod-pg', 'filestore_root:gone', 'filestore_root:main',
    'repository:acme', 'repository:mirror', 'runtime:odoo17',
  ]);
  const text = JSON.stringify(entries);
  assert.ok(!text.includes('REGISTRY_TEST_PW') && !text.includes('no-such-file') && !text.includes('password'), text);
  assert.deepEqual(entries.find((e) => e.name === 'odoo17')!.details, { kind: 'local', httpPorts: [8069, 8079] });
});

test('a registry file that is not right is refused with the offending key; a missing one is empty', () => {
  assert.deepEqual(Infrastructure.load(join(scratch, 'absent.yaml')).entries(), []);
  refused(() => Infrastructure.load(file('bad.yaml', 'databaseServers: [unclosed')), /is not YAML or JSON/);
  refused(() => Infrastructure.load(file('rel.yaml', 'runtimes:\n  x: { kind: local, odooBin: odoo-bin, httpPorts: [1, 2], projects: [a] }\n')), /runtimes\.x\.odooBin: an absolute path/);
  refused(() => Infrastructure.load(file('unbound.yaml', 'filestoreRoots:\n  x: { path: /srv, projects: [] }\n')), /filestoreRoots\.x\.projects: bind the entry to at least one project/);
  refused(() => Infrastructure.load(file('ports.yaml', 'runtimes:\n  x: { kind: local, odooBin: /o, httpPorts: [9000, 8000], projects: [a] }\n')), /the first port must not be after the last/);
  refused(() => Infrastructure.load(file('key.yaml', 'databaseServers:\n  x: { host: h, projects: [a], sslmode: disable }\n')), /Unrecognized key/);
  refused(() => Infrastructure.load(file('ref.yaml', 'databaseServers:\n  x: { host: h, password: hunter2, projects: [a] }\n')), /password: env:VARIABLE or file:\/absolute\/path/);
  // The names OdooOps provides itself cannot be declared again.
  refused(() => Infrastructure.load(file('clash.yaml', 'databaseServers:\n  demo-postgres: { host: h, projects: [demo] }\n'), { databaseServers: { 'demo-postgres': { host: 'x', projects: ['demo'] } } }), /which OdooOps provides itself/);
});

test('an ssh runtime: Odoo\'s own addons directories on its host come after the checkout in --addons-path, one absolute directory each', async () => {
  const entry = (extra: string) => `runtimes:\n  erp: { kind: ssh, host: deploy@erp.example.com, checkoutDir: /srv/addons, odooBin: /opt/odoo/odoo-bin, restart: [systemctl, restart, odoo], healthUrl: "https://erp.example.com/web/health", projects: [acme]${extra} }\n`;
  const ssh = (name: string, extra: string): SshRuntime => {
    const r = Infrastructure.load(file(name, entry(extra))).runtime('erp', 'acme');
    assert.equal(r.kind, 'ssh');
    return r as SshRuntime;
  };
  const plain = ssh('ssh-plain.yaml', '');
  assert.deepEqual(plain.odooAddonsPath, [], 'none by default: the checkout alone, as before');
  const withOdoo = ssh('ssh-odoo.yaml', ', addonsPath: /mnt/extra-addons, odooAddonsPath: [/opt/odoo/addons, /opt/odoo/odoo/addons]');
  // The command line ssh carries: what update() hands the host, captured instead of run.
  const argvOf = async (target: SshRuntime) => {
    const env = { name: 'staging', runtime: 'erp', db_name: 'acme_staging' } as EnvironmentRow;
    const host = new SshOdoo(join(scratch, 'ssh-work'), env, target, '/srv/git/addons.git', { entry: 'x', protocols: ['file'] });
    let seen: string[] = [];
    host.run = async (argv: string[]) => void (seen = argv);
    await host.update({ update: ['shop_core'], install: [] }, async () => {}, new AbortController().signal);
    return seen;
  };
  const addonsOf = (argv: string[]) => argv[argv.indexOf('--addons-path') + 1];
  assert.equal(addonsOf(await argvOf(plain)), '/srv/addons');
  assert.equal(addonsOf(await argvOf(withOdoo)), '/mnt/extra-addons,/opt/odoo/addons,/opt/odoo/odoo/addons', 'the checkout as Odoo sees it first, then Odoo\'s own');
  // Paths only, each one directory (Odoo splits the list on commas), in the operator's file only.
  refused(() => Infrastructure.load(file('ssh-rel.yaml', entry(', odooAddonsPath: [odoo/addons]'))), /runtimes\.erp\.odooAddonsPath\.0: an absolute path/);
  refused(() => Infrastructure.load(file('ssh-comma.yaml', entry(', odooAddonsPath: ["/opt/odoo/addons,/tmp/evil"]'))), /runtimes\.erp\.odooAddonsPath\.0: one directory: Odoo splits --addons-path on commas/);
  refused(() => Infrastructure.load(file('ssh-string.yaml', entry(', odooAddonsPath: /opt/odoo/addons'))), /runtimes\.erp\.odooAddonsPath: /);
  refused(() => Infrastructure.load(file('ssh-nl.yaml', entry(', odooAddonsPath: ["/opt/odoo/addons\\n-i evil"]'))), /runtimes\.erp\.odooAddonsPath\.0: an absolute path/);
  refused(() => Infrastructure.load(file('ssh-checkout-comma.yaml', entry(', addonsPath: "/mnt/a,/tmp/evil"'))), /runtimes\.erp\.addonsPath: one directory/);
  // What the API shows of it: the kind, no host path.
  const shown = Infrastructure.load(file('ssh-shown.yaml', entry(', odooAddonsPath: [/opt/odoo/addons]'))).entries();
  assert.deepEqual(shown.map((e) => e.details), [{ kind: 'ssh' }]);
  assert.ok(!JSON.stringify(shown).includes('/opt/odoo'), JSON.stringify(shown));
});

test('git fetches only over the transport the registry allowed (no local path, no ext::, when the entry is https)', async () => {
  const remote = join(scratch, 'remote.git');
  execFileSync('git', ['init', '-q', '--bare', remote]);
  await assert.rejects(fetchRepository(remote, { entry: 'x', protocols: ['https'] }, join(scratch, 'checkouts', 'a')), /transport 'file' not allowed/);
  await assert.rejects(fetchRepository('ext::sh -c touch% /tmp/odooops-ext-pwned', { entry: 'x', protocols: ['https'] }, join(scratch, 'checkouts', 'b')), /transport 'ext' not allowed/);
  await fetchRepository(remote, { entry: 'x', protocols: ['file'] }, join(scratch, 'checkouts', 'c'));
});

test('secrets: a value read on the worker for a project it is bound to; listed by name only', () => {
  const secretFile = file('clone.password', 'from-a-file-Pw\n');
  const reg = Infrastructure.load(file('secrets.yaml', `
secrets:
  acme-clone: { value: "env:REGISTRY_TEST_CLONE_PW", projects: [acme] }
  acme-file: { value: "file:${secretFile}", projects: [acme], description: the clone password }
  everyone: { value: "env:REGISTRY_TEST_UNSET", projects: ["*"] }
`));
  process.env.REGISTRY_TEST_CLONE_PW = 'from-the-env-Pw';
  try {
    assert.equal(reg.secret('acme-clone', 'acme'), 'from-the-env-Pw');
    assert.equal(reg.secret('acme-file', 'acme'), 'from-a-file-Pw', 'a file\'s value, its final newline dropped');
    refused(() => reg.secret('acme-clone', 'evil'), /the secret "acme-clone" of the registry is not bound to project evil/);
    refused(() => reg.secret('nope', 'acme'), /this worker's registry has no secret "nope"/);
    refused(() => reg.secret('everyone', 'evil'), /the secret "everyone" is not available on this worker \(the registry names an environment variable that is not set\)/);
    const shown = JSON.stringify(reg.entries());
    assert.deepEqual(reg.entries().map((e) => [e.kind, e.name, e.description]), [
      ['secret', 'acme-clone', 'a secret on the worker'], ['secret', 'acme-file', 'the clone password'], ['secret', 'everyone', 'a secret on the worker']]);
    for (const hidden of ['from-the-env-Pw', 'from-a-file-Pw', 'REGISTRY_TEST_CLONE_PW', secretFile, 'env:', 'file:']) assert.ok(!shown.includes(hidden), hidden);
  } finally {
    delete process.env.REGISTRY_TEST_CLONE_PW;
  }
  refused(() => Infrastructure.load(file('bad-secret.yaml', 'secrets:\n  x: { value: hunter2, projects: [acme] }\n')), /secrets\.x\.value: env:VARIABLE or file:\/absolute\/path/);
});
