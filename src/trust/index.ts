/** The trust engine: evidence → verdict → trust state → effective colors → per-host plans (pure). */
export * from './model.ts';
export * from './errors.ts';
export { VERIFIER, initialTrust, isoTime, pastDeadline, stepTrust, type TrustEvent, type TrustStep } from './state.ts';
export { ANY_COLOR, effectiveColors, hostLabel, vmLabel, type EffectiveColors } from './effective-colors.ts';
export { affectedHosts, candidateHosts, computePlan, deriveHostIndex, planHosts, planVm, planVms, replan, samePlanContent, vmsOnHost } from './plan.ts';
export { ChunkedMap } from './chunked-map.ts';
export * from './evidence.ts';
export * from './engine.ts';
