/** Bearer-token check in constant time: both sides are hashed first, so neither length nor content leaks through timing. */
import { createHash, timingSafeEqual } from 'node:crypto';

export function bearerTokenMatcher(token: string): (authorization: string | undefined) => boolean {
  const expected = createHash('sha256').update(token, 'utf8').digest();
  return (authorization) => {
    if (authorization === undefined) return false;
    const match = /^Bearer[ ]+(.+)$/i.exec(authorization);
    const given = createHash('sha256').update(match?.[1] ?? '', 'utf8').digest();
    // Compare even without a match, so a malformed header takes the same time.
    return timingSafeEqual(expected, given) && match !== null;
  };
}
