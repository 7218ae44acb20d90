// The project feed's 'alert' event becomes a warning notification ("OdooOps acme: Backup of production
// failed: … [Open run]"), and picking "Open run" opens that run's log; anything else on the topic is not
// shown. The window is a stand-in that records what VS Code would have been asked to show.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { alertNotice, OPEN_RUN, showAlert, type AlertUi } from '../../src/alerts.ts';

const payload = (over: Record<string, unknown> = {}) => ({
  id: 7, project_id: '5d0c3c2e-8a7b-4a43-9d5e-0d6f8f1f2a11', environment: 'production', kind: 'backup_failed',
  title: 'Backup of production failed',
  message: 'Backup of production failed: daily backup of production (production) in project acme failed at 2026-12-03 02:00 UTC, run #42: pg_dump: connection refused. Next: read its log.',
  run_id: 42, created_at: '2026-12-03T02:00:05.000Z', ...over,
});

function recordingUi(pick?: string): AlertUi & { shown: [string, string[]][]; opened: number[] } {
  const ui = {
    shown: [] as [string, string[]][],
    opened: [] as number[],
    showWarning: async (text: string, ...actions: string[]) => (ui.shown.push([text, actions]), pick),
    openRun: (id: number) => void ui.opened.push(id),
  };
  return ui;
}

describe('alert notifications', () => {
  it('shows a failed backup as a warning with its message and an "Open run" that opens the run', async () => {
    const ui = recordingUi(OPEN_RUN);
    const notice = await showAlert(ui, 'acme', payload());
    assert.ok(notice);
    assert.equal(ui.shown.length, 1);
    const [text, actions] = ui.shown[0]!;
    assert.match(text, /^OdooOps acme: Backup of production failed: .*run #42: pg_dump: connection refused/);
    assert.deepEqual(actions, [OPEN_RUN]);
    assert.deepEqual(ui.opened, [42]);
  });

  it('opens nothing when the notification is dismissed', async () => {
    const ui = recordingUi(undefined);
    await showAlert(ui, 'acme', payload());
    assert.equal(ui.shown.length, 1);
    assert.deepEqual(ui.opened, []);
  });

  it('offers no "Open run" for an alert no run raised (a store filling up)', async () => {
    const ui = recordingUi(OPEN_RUN);
    await showAlert(ui, 'acme', payload({ kind: 'store_filling', environment: null, run_id: null, title: 'Backup store default is filling up', message: 'Backup store default is filling up: 4.0 % free' }));
    assert.deepEqual(ui.shown, [['OdooOps acme: Backup store default is filling up: 4.0 % free', []]]);
    assert.deepEqual(ui.opened, []);
  });

  it('cuts a long message rather than hiding it, and ignores what is not an alert', async () => {
    const long = alertNotice('acme', payload({ message: 'x'.repeat(5000) }))!;
    assert.equal(long.text.length, 600);
    assert.ok(long.text.endsWith('…'));
    const ui = recordingUi(OPEN_RUN);
    assert.equal(await showAlert(ui, 'acme', { id: 1, status: 'failed' }), null);
    assert.equal(await showAlert(ui, 'acme', payload({ kind: 'something_else' })), null);
    assert.deepEqual(ui.shown, []);
  });
});
