// What GitHub shows of OdooOps: a commit status per stage (contexts "ci/odooops (development|staging|
// production)", as Odoo.sh's "ci/odoo.sh (…)"), a deployment per environment with its URL, and a
// comment on a pull request with its development environment's URL. The token comes only from the
// server's configuration. A GitHub that cannot be reached never fails a deploy: it is logged.
import { Octokit } from '@octokit/rest';

export interface GitHubFeedbackOptions {
  token: string;
  /** https://api.github.com by default; GitHub Enterprise's API URL otherwise. */
  baseUrl?: string;
}

export type CommitState = 'pending' | 'success' | 'failure' | 'error';

const split = (repo: string) => {
  const [owner, name] = repo.split('/') as [string, string];
  return { owner, repo: name };
};

export class GitHubFeedback {
  private readonly octokit: Octokit;
  constructor(o: GitHubFeedbackOptions) {
    this.octokit = new Octokit({ auth: o.token, baseUrl: o.baseUrl, userAgent: 'odooops', request: { retries: 0 } });
  }

  async status(repo: string, sha: string, stage: string, state: CommitState, description: string, targetUrl?: string | null): Promise<void> {
    await this.octokit.rest.repos.createCommitStatus({
      ...split(repo), sha, state, context: `ci/odooops (${stage})`, description: description.slice(0, 140), ...(targetUrl ? { target_url: targetUrl } : {}),
    });
  }

  /** A deployment of `sha` to the environment and its state (GitHub's environments page shows it). */
  async deployment(repo: string, sha: string, environment: string, stage: string, state: 'in_progress' | 'success' | 'failure', url?: string | null): Promise<void> {
    const created = await this.octokit.rest.repos.createDeployment({
      ...split(repo), ref: sha, environment, auto_merge: false, required_contexts: [],
      production_environment: stage === 'production', transient_environment: stage === 'development',
    });
    const id = (created.data as { id?: number }).id;
    if (!id) return;
    await this.octokit.rest.repos.createDeploymentStatus({ ...split(repo), deployment_id: id, state, ...(url ? { environment_url: url } : {}) });
  }

  /** The build's commit status: context "ci/odooops (tests)", whichever environment built it. */
  async testStatus(repo: string, sha: string, state: CommitState, description: string, targetUrl?: string | null): Promise<void> {
    await this.octokit.rest.repos.createCommitStatus({
      ...split(repo), sha, state, context: 'ci/odooops (tests)', description: description.slice(0, 140), ...(targetUrl ? { target_url: targetUrl } : {}),
    });
  }

  /** The open pull requests whose head is the commit (where a build's summary is commented). */
  async openPullRequests(repo: string, sha: string): Promise<number[]> {
    const { data } = await this.octokit.rest.repos.listPullRequestsAssociatedWithCommit({ ...split(repo), commit_sha: sha });
    return (data as { number: number; state: string; head?: { sha?: string } }[])
      .filter((p) => p.state === 'open' && (!p.head?.sha || p.head.sha === sha)).map((p) => p.number);
  }

  async comment(repo: string, pr: number, body: string): Promise<void> {
    await this.octokit.rest.issues.createComment({ ...split(repo), issue_number: pr, body });
  }
}
