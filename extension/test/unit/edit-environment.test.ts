// "Edit Environment…": the questions it asks, what it refuses before sending, the one PATCH it sends,
// and the menu that shows it to project admins only.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'mocha';
import type * as C from '../../../contract/index.ts';
import { editEnvironment, type EditApi, type EditUi } from '../../src/editEnvironment.ts';

const env: C.Environment = {
  id: '00000000-0000-4000-8000-00000000000a', project: 'acme', name: 'staging', stage: 'staging', branch: 'staging', url: null,
  database: { server: 'main-pg', name: 'acme_staging' }, filestore: 'main-files', runtime: null, activeRunId: null,
};
const INFRA: C.InfraEntry[] = [
  { kind: 'database_server', name: 'main-pg', description: 'PostgreSQL odoo@10.0.0.5', details: { databases: ['^acme_[^/]*$'] } },
  { kind: 'database_server', name: 'other-pg', description: 'PostgreSQL odoo@10.0.0.6', details: { databases: ['^.*$'] } },
  { kind: 'filestore_root', name: 'main-files', description: 'a filestore root on the worker', details: {} },
  { kind: 'runtime', name: 'odoo17', description: 'odoo-bin', details: { kind: 'local' } },
];

/** A stand-in for the HTTP API (the real PATCH is exercised by the server's tests): records what is sent. */
function api() {
  const sent: { method: string; path: string; body: unknown }[] = [];
  const a: EditApi & { sent: typeof sent } = {
    sent,
    get: async (path, schema) => {
      assert.equal(path, '/api/projects/acme/infrastructure');
      return schema.parse(INFRA);
    },
    request: async (method, path, schema, body) => {
      sent.push({ method, path, body });
      const b = body as C.UpdateEnvironment;
      return { status: 200, data: schema.parse({ ...env, ...(b.url !== undefined ? { url: b.url } : {}), ...(b.branch !== undefined ? { branch: b.branch } : {}) }) };
    },
  };
  return a;
}

/** A scripted user: picks by label and types answers in order; every validation message is kept. */
function user(...answers: (string | undefined)[]) {
  const asked: string[] = [];
  const refusals: Record<string, string | null> = {};
  let tryValues: string[] = [];
  const ui: EditUi & { asked: string[]; refusals: typeof refusals; probe(values: string[]): void } = {
    asked, refusals,
    probe: (values) => (tryValues = values),
    pick: async (items, placeHolder) => {
      asked.push(`pick: ${placeHolder} [${items.map((i) => i.label).join(', ')}]`);
      const want = answers.shift();
      return want === undefined ? undefined : items.find((i) => i.label === want) ?? assert.fail(`no item ${want} in ${items.map((i) => i.label)}`);
    },
    input: async (prompt, value, validate) => {
      asked.push(`input: ${prompt} (${value})`);
      for (const v of tryValues) refusals[v] = validate(v);
      tryValues = [];
      const typed = answers.shift();
      if (typed !== undefined) assert.equal(validate(typed), null, `"${typed}" is accepted`);
      return typed;
    },
  };
  return ui;
}

describe('Edit Environment…', () => {
  it('changes the URL with one PATCH; a URL that is not http(s) is refused in the input box', async () => {
    const a = api();
    const u = user('URL', 'https://staging.acme.example');
    u.probe(['ftp://acme.example', 'javascript:alert(1)', 'not a url', 'http://ok.example']);
    const updated = await editEnvironment(a, u, 'acme', env);
    assert.deepEqual(a.sent, [{ method: 'PATCH', path: '/api/projects/acme/environments/staging', body: { url: 'https://staging.acme.example' } }]);
    assert.equal(updated?.url, 'https://staging.acme.example');
    assert.match(String(u.refusals['ftp://acme.example']), /./);
    assert.match(String(u.refusals['javascript:alert(1)']), /./);
    assert.match(String(u.refusals['not a url']), /./);
    assert.equal(u.refusals['http://ok.example'], null);
    assert.match(u.asked[0]!, /^pick: Change what of staging\? \[URL, Branch, Database server, Database name, Filestore root\]$/);
  });

  it('an empty branch clears it; a branch git would refuse is refused', async () => {
    const a = api();
    const u = user('Branch', '');
    u.probe(['feature/../x', '-rf', 'feature/ok']);
    await editEnvironment(a, u, 'acme', env);
    assert.deepEqual(a.sent.map((s) => s.body), [{ branch: null }]);
    assert.match(String(u.refusals['feature/../x']), /\.\./);
    assert.match(String(u.refusals['-rf']), /branch name/);
    assert.equal(u.refusals['feature/ok'], null);
  });

  it('the database server is picked from the project\'s registry entries, its name checked against the entry', async () => {
    const a = api();
    const u = user('Database server', 'other-pg', 'acme_new');
    await editEnvironment(a, u, 'acme', env);
    assert.match(u.asked[1]!, /^pick: Database server of staging \[main-pg, other-pg\]$/, 'only database servers, only those bound to the project');
    assert.deepEqual(a.sent.map((s) => s.body), [{ database: { server: 'other-pg', name: 'acme_new' } }]);

    const b = api();
    const v = user('Database name', 'acme_staging2');
    v.probe(['postgres', 'acme_x_odooops_new_4', 'x; drop table y', 'shop_prod', 'acme_prod']);
    await editEnvironment(b, v, 'acme', env);
    assert.deepEqual(b.sent.map((s) => s.body), [{ database: { name: 'acme_staging2' } }]);
    assert.match(String(v.refusals.postgres), /server's own databases/);
    assert.match(String(v.refusals['acme_x_odooops_new_4']), /side databases/);
    assert.match(String(v.refusals['x; drop table y']), /PostgreSQL name/);
    assert.match(String(v.refusals.shop_prod), /the registry does not let acme use "shop_prod" on main-pg/);
    assert.equal(v.refusals.acme_prod, null);
  });

  it('the filestore root is one of the registry\'s, or none', async () => {
    const a = api();
    const u = user('Filestore root', '(none)');
    await editEnvironment(a, u, 'acme', env);
    assert.match(u.asked[1]!, /\[main-files, \(none\)\]$/);
    assert.deepEqual(a.sent.map((s) => s.body), [{ filestore: null }]);
  });

  it('stepping out, or changing nothing, sends nothing', async () => {
    for (const answers of [[undefined], ['URL', undefined], ['Database server', undefined], ['Database name', 'acme_staging'], ['Filestore root', undefined]]) {
      const a = api();
      assert.equal(await editEnvironment(a, user(...answers), 'acme', env), undefined, JSON.stringify(answers));
      assert.deepEqual(a.sent, [], JSON.stringify(answers));
    }
  });

  it('a given change skips the questions, and is checked like any other', async () => {
    const a = api();
    const u = user();
    await editEnvironment(a, u, 'acme', env, { url: 'https://x.example' });
    assert.deepEqual(u.asked, []);
    assert.deepEqual(a.sent.map((s) => s.body), [{ url: 'https://x.example' }]);
    await assert.rejects(editEnvironment(a, u, 'acme', env, { url: 'file:///etc/passwd' } as C.UpdateEnvironment));
    await assert.rejects(editEnvironment(a, u, 'acme', env, {} as C.UpdateEnvironment), /nothing to change/);
    assert.equal(a.sent.length, 1);
  });

  it('the menu shows it on environments of projects the user is admin of, and nowhere else', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const command = pkg.contributes.commands.find((c: { command: string }) => c.command === 'odooops.editEnvironment');
    assert.equal(command?.title, 'Edit Environment…');
    const menu = pkg.contributes.menus['view/item/context'].find((m: { command: string }) => m.command === 'odooops.editEnvironment');
    const regex = new RegExp(/viewItem =~ \/(.*)\/$/.exec(menu.when)![1]!);
    for (const v of ['environment:production:admin', 'environment:staging:admin', 'environment:development:admin']) assert.ok(regex.test(v), v);
    for (const v of ['environment:production', 'environment:staging', 'environment:development', 'backup:manual', 'project', 'run:queued']) assert.ok(!regex.test(v), v);
    // The clone menu still shows on staging and development to whoever may operate there, admin or not.
    const clone = pkg.contributes.menus['view/item/context'].find((m: { command: string }) => m.command === 'odooops.cloneProdToStaging');
    const cloneRegex = new RegExp(/viewItem =~ \/(.*)\/$/.exec(clone.when)![1]!);
    for (const v of ['environment:staging:operate', 'environment:staging:admin', 'environment:development:admin']) assert.ok(cloneRegex.test(v), v);
    for (const v of ['environment:production:admin', 'environment:staging']) assert.ok(!cloneRegex.test(v), v);
  });
});
