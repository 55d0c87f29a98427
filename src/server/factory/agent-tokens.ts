import type { Job } from '../../core/index.js';
import type { Store } from '../../store/index.js';
import { newTokenSecret } from '../token-secret.js';

/** How long an agent token outlives its job's time limit; the whole life of one without. */
const SLACK_MS = 60 * 60 * 1000;
const NO_LIMIT_MS = 24 * 60 * 60 * 1000;

/**
 * The job-scoped tokens the server hands to a factory with each claim, for the agent it runs
 * (`FLEET_TOKEN`): an `agent` token of the job's tenant that reads its own job and its events
 * and submits children of it, nothing else. One per run; revoked when the run reports its end
 * or the job is cancelled, and expiring an hour after the job's time limit (a day without one)
 * in case this replica never hears the end (it restarted, the lease was reaped).
 */
export class AgentTokens {
  /** jobId → the live token of its current run on this replica. */
  private readonly live = new Map<string, { id: string; tenant: string }>();

  constructor(
    private readonly store: Store,
    private readonly clock: () => number = Date.now,
  ) {}

  /** A new token for the run of `job` at `epoch`; its secret (shown this once). */
  async mint(job: Job, epoch: number): Promise<string> {
    await this.revoke(job.id);
    const secret = newTokenSecret('agent');
    const expiresAt = this.clock() + (job.timeoutMs ?? NO_LIMIT_MS) + SLACK_MS;
    const token = await this.store.createToken(
      job.tenant,
      {
        name: `agent of job ${job.id} (run ${epoch})`,
        role: 'agent',
        tenants: [job.tenant],
        jobId: job.id,
        expiresAt,
      },
      secret,
    );
    this.live.set(job.id, { id: token.id, tenant: job.tenant });
    return secret.secret;
  }

  /** Revokes the live token of `jobId`'s run, if this replica minted one. */
  async revoke(jobId: string): Promise<void> {
    const token = this.live.get(jobId);
    if (token === undefined) return;
    this.live.delete(jobId);
    await this.store.revokeToken(token.id, token.tenant);
  }
}
