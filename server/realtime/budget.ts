// The Realtime budget: how much a run's log may cost in Supabase Realtime messages and in stored bytes,
// and the plans' quotas it is measured against. On Supabase every broadcast is stored in
// realtime.messages for three days and counts against the project's quota when it arrives, watched or
// not, and once more per viewer it reaches. The SQL side (migrations/20261202000300_ops_log_budget.sql)
// builds announcements to fit LOG_MESSAGE_MAX_BYTES; the worker's LogBatcher spaces them.

/** A run's log announcements per second, at most (apart from a few system lines and its end). */
export const LOG_ANNOUNCEMENTS_PER_SECOND = 4;
/** So: one announcement per run at most every this many ms; the newest lines wait no longer than that. */
export const LOG_ANNOUNCE_GAP_MS = 1000 / LOG_ANNOUNCEMENTS_PER_SECOND;
/** Largest log announcement as Supabase stores it: the payload's jsonb text with the id realtime.send adds. */
export const LOG_MESSAGE_MAX_BYTES = 2048;
/** What Supabase's realtime.send adds to a payload (`, "id": "<uuid>"`); the local shim does not. */
export const SUPABASE_ID_BYTES = 46;
/** How long Supabase keeps broadcasts in realtime.messages (daily partitions dropped after 72 h). */
export const SUPABASE_RETENTION_HOURS = 72;

export interface Plan {
  name: string;
  /** The project's Realtime messages a second (a 60 s average): broadcasts in, plus one per viewer reached. */
  messagesPerSecond: number;
  /** Messages included a month (then billed per million). */
  messagesPerMonth: number;
  /** Database size included. */
  databaseBytes: number;
}

/** Supabase's plans (realtime/limits.mdx, manage-your-usage/realtime-messages.mdx; Team as Pro without a spend cap). */
export const PLANS: readonly Plan[] = [
  { name: 'Free', messagesPerSecond: 100, messagesPerMonth: 2_000_000, databaseBytes: 500e6 },
  { name: 'Pro', messagesPerSecond: 500, messagesPerMonth: 5_000_000, databaseBytes: 8e9 },
  { name: 'Team', messagesPerSecond: 2_500, messagesPerMonth: 5_000_000, databaseBytes: 8e9 },
];

/** Messages a second a run streaming flat out costs a project with `viewers` following it. */
export function messagesPerSecond(viewers: number, perRun = LOG_ANNOUNCEMENTS_PER_SECOND): number {
  return perRun * (1 + viewers);
}

/** How many runs may stream flat out at once, each with `viewers` viewers, within a plan's rate. */
export function concurrentRuns(plan: Plan, viewers: number, perRun = LOG_ANNOUNCEMENTS_PER_SECOND): number {
  return Math.floor(plan.messagesPerSecond / messagesPerSecond(viewers, perRun));
}

/** Hours of flat-out streaming (one run, `viewers` viewers) a plan's monthly messages cover. */
export function streamingHoursPerMonth(plan: Plan, viewers: number, perRun = LOG_ANNOUNCEMENTS_PER_SECOND): number {
  return plan.messagesPerMonth / (messagesPerSecond(viewers, perRun) * 3600);
}
