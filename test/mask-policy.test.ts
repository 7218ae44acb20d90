// The rule that a clone run may only make the project's masking stricter, on its own (the API and the
// worker both use it), and the floors no profile lowers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MaskProfile } from '../contract/index.ts';
import { defaultMaskProfile } from '../server/odoo/mask.ts';
import { atLeastAsStrict, floorViolations, MASK_FLOORS, tightenProfile, withFloors } from '../server/odoo/mask-policy.ts';

const project: MaskProfile = {
  version: 1,
  columns: {
    'res_partner.name': { strategy: 'name' },
    'res_partner.street': { strategy: 'null' },
    'res_partner.city': { strategy: 'fixed', value: 'Nowhere' },
    'res_users.login': { strategy: 'email', where: { column: 'login', op: 'not_in', value: ['admin', '__system__'] } },
    'res_partner.ref': { strategy: 'keep' },
  },
  truncate: ['mail_mail'],
};
const run = (columns: MaskProfile['columns'], truncate: string[] = []): MaskProfile => ({ version: 1, columns, truncate });

test('strength: keep < any replacing strategy < null; a run may swap replacing strategies', () => {
  const weakened = (rule: MaskProfile['columns'][string], key = 'res_partner.name') => tightenProfile(project, run({ [key]: rule })).weakened;
  assert.deepEqual(weakened({ strategy: 'keep' }), ['res_partner.name (name → keep)']);
  assert.deepEqual(weakened({ strategy: 'null' }), []);
  assert.deepEqual(weakened({ strategy: 'text' }), []);
  assert.deepEqual(weakened({ strategy: 'fixed', value: 'x' }), []);
  assert.deepEqual(weakened({ strategy: 'name' }, 'res_partner.street'), ['res_partner.street (null → name)']);
  assert.deepEqual(weakened({ strategy: 'keep' }, 'res_partner.street'), ['res_partner.street (null → keep)']);
  assert.deepEqual(weakened({ strategy: 'email' }, 'res_partner.city'), [], 'fixed and email both replace');
});

test('filters: a run cannot add or change one on a masked column, may drop it, and may filter what the project does not mask', () => {
  const filter = { column: 'country_code', op: 'eq' as const, value: 'BE' };
  assert.deepEqual(tightenProfile(project, run({ 'res_partner.name': { strategy: 'null', where: filter } })).weakened,
    ['res_partner.name (name → null where country_code eq "BE")'], 'a filter masks fewer rows, even with a stronger strategy');
  const login = project.columns['res_users.login']!;
  assert.deepEqual(tightenProfile(project, run({ 'res_users.login': { strategy: 'null', where: { ...login.where!, value: ['admin'] } } })).weakened.length, 1,
    'another filter');
  assert.deepEqual(tightenProfile(project, run({ 'res_users.login': { strategy: 'null', where: { ...login.where!, value: ['__system__', 'admin', 'admin'] } } })).weakened, [],
    'the same filter (a list is a set)');
  assert.deepEqual(tightenProfile(project, run({ 'res_users.login': { strategy: 'keep', where: login.where } })).weakened.length, 1);
  assert.deepEqual(tightenProfile(project, run({ 'res_users.login': { strategy: 'email' } })).weakened, [], 'dropping the filter masks more rows');
  assert.deepEqual(tightenProfile(project, run({ 'res_partner.country_code': { strategy: 'fixed', value: 'XX', where: filter } })).weakened, [],
    'a column the project does not mask');
  assert.deepEqual(tightenProfile(project, run({ 'res_partner.ref': { strategy: 'keep', where: filter } })).weakened, [], 'a column the project keeps');
  assert.ok(atLeastAsStrict({ strategy: 'keep' }, undefined));
});

test('the merge: the run\'s rules replace the project\'s for their columns, tables to empty are added, nothing is dropped', () => {
  const t = tightenProfile(project, run({ 'res_partner.name': { strategy: 'null' }, 'res_partner.vat': { strategy: 'null' }, 'res_partner.zip': { strategy: 'keep' } }, ['bus_bus']));
  assert.deepEqual(t.weakened, []);
  assert.deepEqual(t.profile.columns['res_partner.name'], { strategy: 'null' });
  assert.deepEqual(t.profile.columns['res_partner.vat'], { strategy: 'null' });
  assert.ok(!('res_partner.zip' in t.profile.columns), '"keep" on an unmasked column adds nothing');
  assert.deepEqual(t.profile.columns['res_partner.street'], project.columns['res_partner.street']);
  assert.deepEqual(t.profile.truncate, ['mail_mail', 'bus_bus']);
  assert.deepEqual(tightenProfile(project, run({}, [])).profile, project, 'an empty run profile changes nothing');
  // Several weakenings are all named, sorted.
  assert.deepEqual(tightenProfile(project, run({ 'res_partner.street': { strategy: 'keep' }, 'res_partner.name': { strategy: 'keep' } })).weakened,
    ['res_partner.name (name → keep)', 'res_partner.street (null → keep)']);
});

test('floors: passwords and TOTP secrets never copied, API keys and TOTP devices emptied, whatever the profile', () => {
  const lax = run({ 'res_users.password': { strategy: 'keep' }, 'res_users.totp_secret': { strategy: 'null', where: { column: 'id', op: 'ne', value: 2 } } });
  const floored = withFloors(lax);
  assert.deepEqual(floored.columns['res_users.password'], { strategy: 'null' });
  assert.deepEqual(floored.columns['res_users.totp_secret'], { strategy: 'null' });
  assert.deepEqual(floored.truncate, MASK_FLOORS.truncate);
  assert.equal(floorViolations(lax).length, 2);
  assert.match(floorViolations(lax)[0]!, /^res_users\.password \(keep: it is always null\)$/);
  assert.deepEqual(floorViolations(withFloors(project)), []);
  // The default profile no longer keeps any user's password hash.
  const d = defaultMaskProfile();
  assert.deepEqual(d.columns['res_users.password'], { strategy: 'null' });
  assert.deepEqual(floorViolations(d), []);
  assert.deepEqual(withFloors(d).columns, d.columns);
});

test("the companies' own data: keep unless a profile says mask; a run may mask it, never keep what the project masks", () => {
  const masks = { ...project, companies: 'mask' as const };
  assert.deepEqual(tightenProfile(masks, { ...run({}), companies: 'keep' }).weakened, ['companies (mask → keep)']);
  assert.equal(tightenProfile(masks, run({})).profile.companies, 'mask', 'a run that says nothing keeps the project\'s mask');
  const stricter = tightenProfile(project, { ...run({}), companies: 'mask' });
  assert.deepEqual([stricter.weakened, stricter.profile.companies], [[], 'mask']);
  assert.equal(withFloors(masks).companies, 'mask', 'the floors keep it');
  assert.equal(tightenProfile(project, run({})).profile.companies, undefined, 'absent is keep, and stays absent');
});
