/** The HTTP status of each error the server answers with; any code not listed is the model failing (500). */
import type { EdgevolveError, ErrorCode } from '../errors/index.ts';

const STATUS_BY_CODE: ReadonlyMap<ErrorCode, number> = new Map<ErrorCode, number>([
  ['E_SERVER_BAD_REQUEST', 400],
  ['E_SERVING_INPUT_INVALID', 400],
  ['E_SERVER_UNAUTHORIZED', 401],
  ['E_SERVER_NOT_FOUND', 404],
  ['E_SERVER_BODY_TOO_LARGE', 413],
  ['E_SERVER_QUEUE_FULL', 429],
  ['E_SERVING_NOT_LOADED', 503],
  ['E_SERVING_CLOSED', 503],
  ['E_SERVER_TIMEOUT', 504],
]);

export function httpStatusOf(error: EdgevolveError): number {
  // A known path with the wrong method names the method in its context.
  if (error.code === 'E_SERVER_NOT_FOUND' && error.context.method !== undefined) return 405;
  // A named version that is not the one served does not exist here; no version at all is "not yet".
  if (error.code === 'E_SERVING_NOT_LOADED' && error.context.requestedVersion !== undefined) return 404;
  if (error.code === 'E_SERVER_TIMEOUT' && error.context.phase === 'queued') return 503;
  return STATUS_BY_CODE.get(error.code) ?? 500;
}
