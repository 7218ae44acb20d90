// Masking is a project policy: a project admin sets the profile, and a clone run's own profile may only
// make it stricter. Pure functions over profiles, used by the API (at queue time) and by the worker
// (when the run starts, for runs that did not come through the API), so both judge alike.
import type { MaskProfile, MaskRule } from '../../contract/index.ts';

/**
 * How much of a value a strategy lets through: keep lets everything through, a replacing strategy
 * (a fake or a constant) lets its shape through, null nothing.
 */
const STRENGTH: Record<MaskRule['strategy'], number> = { keep: 0, name: 1, email: 1, phone: 1, text: 1, fixed: 1, null: 2 };

/**
 * What no profile can lower, not even a project admin's: production password hashes and TOTP secrets
 * never leave production, API keys and TOTP devices stay behind. (The clone gives its admin user a
 * fresh password instead.)
 */
export const MASK_FLOORS: MaskProfile = {
  version: 1,
  columns: {
    'res_users.password': { strategy: 'null' },
    'res_users.totp_secret': { strategy: 'null' },
  },
  truncate: ['res_users_apikeys', 'auth_totp_device'],
};

export const floorDescriptions = (): string[] => [
  ...Object.entries(MASK_FLOORS.columns).map(([k, r]) => `${k}: ${describeRule(r)}, always`),
  ...MASK_FLOORS.truncate.map((t) => `${t}: emptied, always`),
];

export function describeRule(r: MaskRule | undefined): string {
  if (!r) return 'not masked';
  if (r.strategy === 'keep') return 'keep';
  const w = r.where;
  return `${r.strategy}${w ? ` where ${w.column} ${w.op}${w.value === undefined ? '' : ` ${JSON.stringify(w.value)}`}` : ''}`;
}

/** Filters compare as the SQL does: values as text, lists as sets. */
function sameFilter(a: NonNullable<MaskRule['where']>, b: NonNullable<MaskRule['where']>): boolean {
  const norm = (w: NonNullable<MaskRule['where']>) => {
    const v = w.value === undefined ? [] : (Array.isArray(w.value) ? w.value : [w.value]).map(String);
    return JSON.stringify([w.column, w.op, ['in', 'not_in'].includes(w.op) ? [...new Set(v)].sort() : v]);
  };
  return norm(a) === norm(b);
}

/**
 * Whether `rule` masks at least what `base` masks: as strong a strategy, on at least the same rows.
 * A filter only narrows the rows a rule masks, so a rule may drop the base's filter but not add one or
 * change it (filters are not compared for inclusion: equal, or none).
 */
export function atLeastAsStrict(rule: MaskRule, base: MaskRule | undefined): boolean {
  if (!base || base.strategy === 'keep') return true;
  if (STRENGTH[rule.strategy] < STRENGTH[base.strategy]) return false;
  if (!rule.where) return true;
  return !!base.where && sameFilter(rule.where, base.where);
}

export interface Tightened {
  /** The base with the stricter profile's rules and tables added (meaningful only when nothing is weakened). */
  profile: MaskProfile;
  /** "table.column (base rule → proposed rule)" of every column the proposal would mask less. */
  weakened: string[];
}

/**
 * Merges `stricter` onto `base`: its rules replace the base's for their columns, its tables to empty
 * are added; columns it does not name keep the base's rule. Every rule that would mask less than the
 * base's is reported in `weakened` (the caller refuses the merge then).
 */
export function tightenProfile(base: MaskProfile, stricter: MaskProfile): Tightened {
  const columns = { ...base.columns };
  const weakened: string[] = [];
  for (const [key, rule] of Object.entries(stricter.columns)) {
    const was = base.columns[key];
    if (!atLeastAsStrict(rule, was)) {
      weakened.push(`${key} (${describeRule(was)} → ${describeRule(rule)})`);
      continue;
    }
    // "keep" on a column the base does not mask changes nothing: leave it out.
    if (rule.strategy === 'keep' && !was) continue;
    columns[key] = rule;
  }
  const truncate = [...new Set([...base.truncate, ...stricter.truncate])];
  if (base.companies === 'mask' && stricter.companies === 'keep') weakened.push('companies (mask → keep)');
  const companies = base.companies === 'mask' || stricter.companies === 'mask' ? 'mask' : (base.companies ?? stricter.companies);
  return { profile: { version: 1, columns, truncate, ...(companies ? { companies } : {}) }, weakened: weakened.sort() };
}

/** The profile with the floors enforced, whatever it says. */
export const withFloors = (p: MaskProfile): MaskProfile => tightenProfile(p, MASK_FLOORS).profile;

/** The rules of a profile that try to lower a floor (a project admin's PUT is refused for them). */
export const floorViolations = (p: MaskProfile): string[] =>
  Object.entries(p.columns)
    .filter(([k, r]) => k in MASK_FLOORS.columns && !atLeastAsStrict(r, MASK_FLOORS.columns[k]))
    .map(([k, r]) => `${k} (${describeRule(r)}: it is always ${describeRule(MASK_FLOORS.columns[k])})`);

/** Why a run's profile is refused, the same words at queue time and when the run starts. */
export const weakenedMessage = (weakened: string[]) =>
  `the run's masking profile would mask less than the project's on ${weakened.length} column(s): ${weakened.join(', ')}; a run can only make masking stricter`;
export const weakenedHint = (project: string) =>
  `drop those rules from the run's profile, or ask a project admin to change the project's: odooops project masking ${project} --set FILE`;
