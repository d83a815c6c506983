import type { ConfidenceScores } from '../confidence.ts';
import type { AddResult } from './store.ts';

/** Which live rows a collection keeps (the collect-samples command's `criterion`). */
export type CollectionCriterion = 'low-confidence' | 'high-entropy' | 'random';

export interface CollectionRequest {
  readonly criterion: CollectionCriterion;
  readonly count: number;
  /** Bytes of NPY files the collection may keep; unbounded when undefined (the store's caps still apply). */
  readonly maxBytes: number | undefined;
  /** `high-entropy`: normalized entropy above this. */
  readonly entropyAbove: number;
}

/** Why a collection ended. */
export type CollectionEnd = 'count' | 'max-bytes' | 'day-count' | 'day-bytes' | 'quota' | 'wait' | 'cancelled';

export interface CollectionOutcome {
  readonly criterion: CollectionCriterion;
  readonly requested: number;
  readonly collected: number;
  readonly bytes: number;
  readonly end: CollectionEnd;
}

/**
 * One collect-samples campaign: the miner offers it every live row (with the rule's verdict
 * and the row's scores); it takes rows that meet its criterion until `count` are stored,
 * `maxBytes` would be exceeded, or the store refuses by a cap. Rows are claimed when offered
 * (so concurrent writes cannot overshoot) and released when the store refuses them.
 */
export class SampleCollection {
  private claimed = 0;
  private claimedBytes = 0;
  private stored = 0;
  private storedBytes = 0;
  private ended: CollectionEnd | undefined;
  /** Size of the last row refused for lack of byte budget. */
  private refusedBytes: number | undefined;
  private resolve: (outcome: CollectionOutcome) => void = () => {};
  /** Resolves once the collection ended (see `end`). */
  readonly done: Promise<CollectionOutcome>;

  constructor(readonly request: CollectionRequest) {
    this.done = new Promise((resolve) => {
      this.resolve = resolve;
    });
  }

  get active(): boolean {
    return this.ended === undefined;
  }

  /** Whether a row meets the criterion; `ruleHard` is the model's mining rule verdict. */
  matches(scores: ConfidenceScores | undefined, ruleHard: boolean): boolean {
    switch (this.request.criterion) {
      case 'random':
        return true;
      case 'low-confidence':
        return ruleHard;
      case 'high-entropy':
        return scores !== undefined && scores.normalizedEntropy > this.request.entropyAbove;
    }
  }

  /** Reserves room for one row of `bytes`; false when the collection is full or over. */
  claim(bytes: number): boolean {
    if (this.ended !== undefined || this.claimed >= this.request.count) return false;
    if (this.request.maxBytes !== undefined && this.claimedBytes + bytes > this.request.maxBytes) {
      this.refusedBytes = bytes;
      this.endIfBytesSpent();
      return false;
    }
    this.claimed++;
    this.claimedBytes += bytes;
    return true;
  }

  /** The store's answer for a claimed row. */
  settle(bytes: number, result: AddResult | undefined): void {
    if (result?.stored === true) {
      this.stored++;
      this.storedBytes += bytes;
      if (this.stored >= this.request.count) this.end('count');
      else this.endIfBytesSpent();
      return;
    }
    this.claimed--;
    this.claimedBytes -= bytes;
    if (result !== undefined) this.end(result.reason);
  }

  /** Once nothing is in flight (a failed write would free room), a row that did not fit ends it. */
  private endIfBytesSpent(): void {
    if (this.refusedBytes !== undefined && this.claimed === this.stored && this.claimedBytes + this.refusedBytes > (this.request.maxBytes ?? Infinity)) this.end('max-bytes');
  }

  /** Ends it now (the wait ran out, or the command was cancelled); idempotent. */
  end(reason: CollectionEnd): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    this.resolve(this.outcome());
  }

  /** The numbers so far; after the miner drained, the final ones (writes in flight when it ended included). */
  outcome(): CollectionOutcome {
    return { criterion: this.request.criterion, requested: this.request.count, collected: this.stored, bytes: this.storedBytes, end: this.ended ?? 'cancelled' };
  }
}
