// Production, staging and development tell apart in the tree by shape and colour (they looked alike),
// whatever their last run did; a stage's colour is never one that means a run's outcome.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { STAGES, RUN_STATUSES } from '../../../contract/index.ts';
import { environmentIcon, FAILED_COLOR } from '../../src/environmentIcon.ts';

// The colours the tree gives run statuses (tree.ts STATUS_ICON): running, succeeded, failed.
const OUTCOME_COLORS = ['charts.yellow', 'charts.green', 'testing.iconPassed', 'charts.red', FAILED_COLOR];

describe('environment icons', () => {
  it('gives each stage its own codicon and its own colour, none of them a run-outcome colour', () => {
    const idle = STAGES.map((s) => environmentIcon(s, undefined, false));
    assert.equal(new Set(idle.map((i) => i.id)).size, STAGES.length, JSON.stringify(idle));
    assert.equal(new Set(idle.map((i) => i.color)).size, STAGES.length, JSON.stringify(idle));
    for (const i of idle) assert.ok(!OUTCOME_COLORS.includes(i.color), `${i.color} reads as a run outcome`);
  });

  it('keeps the stage apart after a succeeded, cancelled, failed or unhealthy state', () => {
    for (const status of ['succeeded', 'cancelled', 'failed'] as const) {
      const shapes = STAGES.map((s) => environmentIcon(s, status, false).id);
      assert.equal(new Set(shapes).size, STAGES.length, `${status}: ${shapes.join(', ')}`);
    }
    const unhealthy = STAGES.map((s) => environmentIcon(s, 'succeeded', true).id);
    assert.equal(new Set(unhealthy).size, STAGES.length, unhealthy.join(', '));
  });

  it('shows a failed last run or an unhealthy Odoo in the failure colour, on the stage shape', () => {
    for (const s of STAGES) {
      assert.deepEqual(environmentIcon(s, 'failed', false), { id: environmentIcon(s, undefined, false).id, color: FAILED_COLOR });
      assert.equal(environmentIcon(s, 'succeeded', true).color, FAILED_COLOR);
      assert.notEqual(environmentIcon(s, 'succeeded', false).color, FAILED_COLOR);
    }
  });

  it('shows a run in progress as one while it lasts', () => {
    assert.equal(environmentIcon('production', 'running', false).id, 'sync~spin');
    assert.equal(environmentIcon('staging', 'queued', false).id, 'clock');
    assert.ok(RUN_STATUSES.every((st) => typeof environmentIcon('development', st, false).id === 'string'));
  });
});
