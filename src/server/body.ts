/** Request body pieces both transports share: the size refusal and the aligned buffer. */
import { EdgevolveError } from '../errors/index.ts';

export function bodyTooLarge(size: number, limit: number): EdgevolveError {
  return new EdgevolveError('E_SERVER_BODY_TOO_LARGE', `the request body is ${size >= limit ? `over ${limit}` : String(size)} bytes; the limit is ${limit} (server.maxBodyBytes)`, {
    context: { limit },
  });
}

/**
 * A buffer of `size` bytes for a body whose binary part starts after `jsonLength` bytes
 * of JSON, placed so that part is 8-byte aligned in its ArrayBuffer (the decoder then
 * views tensors in place instead of copying). Not zero-filled: the caller writes every
 * byte of it (the pad before it is zeroed), one memset less per request.
 */
export function alignedBody(size: number, jsonLength: number | undefined): Buffer {
  const pad = jsonLength === undefined ? 0 : (8 - (jsonLength % 8)) % 8;
  const whole = Buffer.allocUnsafeSlow(size + pad);
  whole.fill(0, 0, pad);
  return whole.subarray(pad);
}
