// A caught mail in a webview (the page: mailPage.ts): "Load remote images" renders it again with remote
// images allowed, an attachment is saved through a save dialog (checked with client/save-target.ts,
// downloaded as bytes; the server never serves it inline), never opened.
import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import * as C from '../../contract/index.ts';
import type { ApiClient } from '../../client/api-client.ts';
import { saveProblem } from '../../client/save-target.ts';
import { mailPageHtml, parseMailPageMessage } from './mailPage.ts';

export interface MailRef {
  project: string;
  env: string;
  id: number;
}

const mailPath = (r: MailRef) => `/api/projects/${encodeURIComponent(r.project)}/environments/${encodeURIComponent(r.env)}/mails/${r.id}`;

export function registerMailViews(need: () => ApiClient): vscode.Disposable[] {
  const open = new Map<string, vscode.WebviewPanel>();
  return [
    vscode.commands.registerCommand('odooops.openMail', async (node?: { type?: string; project?: string; env?: string; mail?: C.CaughtMail }) => {
      if (node?.type !== 'mail' || !node.project || !node.env || !node.mail) return;
      const ref = { project: node.project, env: node.env, id: node.mail.id };
      const key = `${ref.project}/${ref.env}/${ref.id}`;
      const known = open.get(key);
      if (known) return known.reveal();
      let mail: C.CaughtMailDetail;
      try {
        mail = await need().get(mailPath(ref), C.CaughtMailDetail);
      } catch (err) {
        void vscode.window.showErrorMessage(`OdooOps: the mail could not be read: ${(err as Error).message}. Refresh the tree (the catcher keeps mail for a limited time).`);
        return;
      }
      const panel = vscode.window.createWebviewPanel('odooops.mail', `Mail: ${mail.subject || '(no subject)'}`, vscode.ViewColumn.Active, {
        enableScripts: true, enableForms: false, localResourceRoots: [],
      });
      open.set(key, panel);
      let remoteImages = false;
      const render = () => {
        panel.webview.html = mailPageHtml({ mail, nonce: randomBytes(16).toString('base64'), cspSource: panel.webview.cspSource, remoteImages });
      };
      render();
      panel.onDidDispose(() => open.delete(key));
      panel.webview.onDidReceiveMessage(async (raw) => {
        const m = parseMailPageMessage(raw);
        if (!m) return;
        if (m.type === 'remoteImages') {
          remoteImages = true;
          return render();
        }
        const part = mail.parts.find((p) => p.index === m.index);
        if (part) await saveAttachment(need, ref, part);
      });
    }),
  ];
}

async function saveAttachment(need: () => ApiClient, ref: MailRef, part: C.CaughtMailPart): Promise<void> {
  const near = vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(homedir());
  const ask = () => vscode.window.showSaveDialog({ title: `Save the attachment ${part.filename}`, defaultUri: vscode.Uri.joinPath(near, part.filename), saveLabel: 'Save attachment' });
  let to = await ask();
  for (;;) {
    if (!to) return;
    const problem = await saveProblem(to.fsPath);
    if (!problem) break;
    const again = await vscode.window.showErrorMessage(`OdooOps: ${problem.message}; nothing was saved.`, { modal: true, detail: problem.hint }, 'Choose another place…');
    to = again ? await ask() : undefined;
  }
  try {
    const saved = await need().download(`${mailPath(ref)}/attachments/${part.index}`, to.fsPath, () => {});
    void vscode.window.showInformationMessage(`OdooOps: saved ${saved.file}.`, 'Reveal')
      .then((go) => go && vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(saved.file)));
  } catch (err) {
    void vscode.window.showErrorMessage(`OdooOps: the attachment was not saved: ${(err as Error).message}`);
  }
}
