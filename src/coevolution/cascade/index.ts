export { CloudCascade, type CascadeOptions, type CascadeCounters, type CascadeRequest, type CascadeAnswer } from './cascade.ts';
export { CircuitBreaker } from './breaker.ts';
export { measureCascade, type CascadeOutcome } from './measure.ts';
