// What the workspace's git repository says (through VS Code's own git extension, so nothing is run
// here): the checked-out branch and commit, offered as defaults for "Create development environment"
// and "Deploy…". Absent when the workspace is not a git repository or the git extension is off.
import * as vscode from 'vscode';

interface GitApi {
  repositories: { state: { HEAD?: { name?: string; commit?: string } } }[];
}

function head(): { name?: string; commit?: string } | undefined {
  const ext = vscode.extensions.getExtension<{ getAPI(v: 1): GitApi }>('vscode.git');
  if (!ext?.isActive) return undefined;
  try {
    return ext.exports.getAPI(1).repositories[0]?.state.HEAD;
  } catch {
    return undefined;
  }
}

export async function workspaceBranch(): Promise<string | undefined> {
  return head()?.name;
}

export async function workspaceHead(): Promise<string | undefined> {
  const c = head()?.commit;
  return c && /^[0-9a-f]{40}$/.test(c) ? c : undefined;
}
