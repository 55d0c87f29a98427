export * from './errors.js';
export * from './schemas/common.js';
export * from './schemas/job.js';
export * from './schemas/lease.js';
export * from './schemas/run.js';
export * from './schemas/factory.js';
export * from './schemas/profile.js';
export * from './schemas/event.js';
export * from './schemas/artifact.js';
export * from './schemas/signal.js';
export * from './schemas/schedule.js';
export {
  JOB_ACTIONS,
  type JobAction,
  canTransition,
  isActive,
  isTerminal,
  stagesAllowing,
  transition,
} from './job-stage.js';
export { attemptOutcome, type AttemptContext } from './attempt-outcome.js';
export { DEFAULT_BACKOFF, retryDelayMs, type BackoffPolicy } from './backoff.js';
export { externalRefs, planBatch, type ExistingDep, type PlannedJob } from './batch-deps.js';
export { parseInput } from './validate.js';
export * from './schemas/token.js';
export { formatDuration, parseDuration } from './duration.js';
export { checkRule, describeRule, nextRunAt, nextRunTimes, ruleIssues } from './schedule-time.js';
export * from './protocol/factory-protocol.js';
export { PRICES, estimateCostUsd, priceFor, type ModelPrice } from './pricing.js';
export * from './api-bodies.js';
export * from './plan.js';
export { renderPhaseReport, type ReportJob } from './plan-report.js';
export {
  JobFileError,
  formatProblem,
  parseJobFile,
  parseJobFiles,
  type JobDraft,
  type JobFileOptions,
  type JobFileProblem,
  type SourceFile,
} from './job-file.js';
export {
  parsePlan,
  type GateCheck,
  type PlanDefinition,
  type PlanOptions,
  type PlanPhase,
} from './plan-file.js';
export { branchName } from './branch.js';
