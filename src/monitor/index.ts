/** The reference monitor: compiled decisions, Chinese Wall state, the policy-update transaction. */
export { CompiledPolicy, compilePolicy } from './compile.ts';
export { WallState, type StartAnswer, type WallBlocker } from './chinese-wall.ts';
export { explainShare, explainUse, explainAuthorized, explainStart } from './decisions.ts';
export type { ShareAnswer, UseAnswer, AuthorizedAnswer } from './decisions.ts';
export * from './update.ts';
export { MonitorError, MonitorErrorCode, isMonitorError } from './errors.ts';
export { answerQuery, isQueryError, queryOp, DECISION_OPS, type DecisionOp, type QueryAnswer, type QueryError, type DecisionAnswer } from './query.ts';
