/**
 * decodeCommand: the pure part of the channel (size, JSON, envelope, type, signature,
 * target, payload), and the fleet key parsing it relies on.
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  COMMAND_TYPES,
  decodeCommand,
  encodeCommand,
  parsePrivateKey,
  parsePublicKey,
  resolveFleetKeys,
  type CommandDraft,
  type DecodeOptions,
  type FleetPublicKey,
} from '../../../src/control/index.ts';
import { EdgevolveError } from '../../../src/errors/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

function pair(keyId: string, type: 'ed25519' | 'p256' = 'ed25519') {
  const kp = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    signer: parsePrivateKey(keyId, kp.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string),
    publicKey: parsePublicKey(keyId, kp.publicKey.export({ type: 'spki', format: 'pem' }) as string),
    publicPem: kp.publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

const key = pair('k1');
const address = { fleet: 'f1', device: 'd1' };
const options = (over: Partial<DecodeOptions> = {}): DecodeOptions => ({
  maxBytes: 64 * 1024,
  keys: new Map<string, FleetPublicKey>([['k1', key.publicKey]]),
  trustBrokerAcl: false,
  address,
  arrivedOn: 'device',
  ...over,
});
const draft = (over: Partial<CommandDraft> = {}): CommandDraft => ({ id: 'c1', type: 'ping', target: { fleet: 'f1', device: 'd1' }, payload: {}, ...over });
const encode = (d: CommandDraft = draft()) => Buffer.from(encodeCommand(d, key.signer, 1_700_000_000_000).text);

function codeOf(bytes: Buffer, over: Partial<DecodeOptions> = {}): string {
  const decoded = decodeCommand(bytes, options(over));
  return decoded.ok ? 'ok' : decoded.error.code;
}

describe('decodeCommand', () => {
  it('accepts a signed command and applies payload defaults', () => {
    const decoded = decodeCommand(encode(draft({ type: 'profile' })), options());
    expect(decoded.ok).toBe(true);
    if (decoded.ok) {
      expect(decoded.command).toMatchObject({ id: 'c1', type: 'profile', payload: { refresh: false }, issuedAt: 1_700_000_000_000 });
      expect(decoded.signedBy).toBe('k1');
    }
  });

  it('has a payload schema for every command type that accepts its minimal payload', () => {
    const minimal: Record<string, unknown> = {
      deploy: { ref: 'registry.local/models/mnist:1.2.0' },
      rollback: {},
      'set-budgets': { budgets: {} },
      profile: {},
      optimize: {},
      'collect-samples': { count: 10 },
      config: { patch: {} },
      ping: {},
    };
    for (const type of COMMAND_TYPES) expect(codeOf(encode(draft({ type, payload: minimal[type] })))).toBe('ok');
  });

  it('refuses an oversized command before parsing it (invalid JSON over the cap is OVERSIZED, not MALFORMED)', () => {
    expect(codeOf(Buffer.alloc(70_000, 0x7b))).toBe('E_CONTROL_OVERSIZED');
    expect(codeOf(Buffer.alloc(1000, 0x7b))).toBe('E_CONTROL_MALFORMED');
  });

  it('verifies the exact signed bytes: re-serializing the same envelope with other whitespace breaks the signature', () => {
    const wire = JSON.parse(encode().toString()) as { signed: string };
    const respaced = { ...wire, signed: JSON.stringify(JSON.parse(wire.signed), null, 1) };
    expect(codeOf(Buffer.from(JSON.stringify(respaced)))).toBe('E_CONTROL_BAD_SIGNATURE');
  });

  it('verifies ECDSA P-256 (DER) signatures', () => {
    const ec = pair('ec1', 'p256');
    const bytes = Buffer.from(encodeCommand(draft(), ec.signer, Date.now()).text);
    expect(codeOf(bytes, { keys: new Map([['ec1', ec.publicKey]]) })).toBe('ok');
    expect(codeOf(bytes, { keys: new Map([['ec1', pair('ec1', 'p256').publicKey]]) })).toBe('E_CONTROL_BAD_SIGNATURE');
  });

  it('refuses unsigned commands unless trustBrokerAcl, and still checks a signature that is present', () => {
    const unsigned = Buffer.from(encodeCommand(draft(), undefined, Date.now()).text);
    expect(codeOf(unsigned)).toBe('E_CONTROL_UNSIGNED');
    expect(codeOf(unsigned, { trustBrokerAcl: true })).toBe('ok');
    const forged = Buffer.from(encodeCommand(draft(), pair('k1').signer, Date.now()).text);
    expect(codeOf(forged, { trustBrokerAcl: true })).toBe('E_CONTROL_BAD_SIGNATURE');
  });

  it('refuses a command addressed elsewhere: another device, another fleet, or the fleet target on the device topic and back', () => {
    expect(codeOf(encode(draft({ target: { fleet: 'f1', device: 'd2' } })))).toBe('E_CONTROL_WRONG_TARGET');
    expect(codeOf(encode(draft({ target: { fleet: 'f2', device: 'd1' } })))).toBe('E_CONTROL_WRONG_TARGET');
    expect(codeOf(encode(draft({ target: { fleet: 'f1', device: '$all' } })))).toBe('E_CONTROL_WRONG_TARGET');
    expect(codeOf(encode(draft({ target: { fleet: 'f1', device: '$all' } })), { arrivedOn: 'fleet' })).toBe('ok');
    expect(codeOf(encode(), { arrivedOn: 'fleet' })).toBe('E_CONTROL_WRONG_TARGET');
  });

  it('names the bad field of an invalid payload and keeps the id for the answer', () => {
    const decoded = decodeCommand(encode(draft({ type: 'set-budgets', payload: { budgets: { latencyP95Ms: 'fast' } } })), options());
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) {
      expect(decoded.error.code).toBe('E_CONTROL_INVALID_PAYLOAD');
      expect(decoded.error.message).toContain('budgets.latencyP95Ms');
      expect(decoded.id).toBe('c1');
    }
  });

  it('refuses unknown types, unknown fields, wrong versions and ids with MQTT wildcards', () => {
    expect(codeOf(encode(draft({ type: 'exec' as never })))).toBe('E_CONTROL_UNKNOWN_TYPE');
    expect(codeOf(encode(draft({ payload: { echo: 'x', extra: 1 } })))).toBe('E_CONTROL_INVALID_PAYLOAD');
    expect(codeOf(encode(draft({ id: 'a/#' })))).toBe('E_CONTROL_MALFORMED');
    const wire = JSON.parse(encode().toString()) as Record<string, unknown>;
    expect(codeOf(Buffer.from(JSON.stringify({ ...wire, v: 2 })))).toBe('E_CONTROL_MALFORMED');
    expect(codeOf(Buffer.from(JSON.stringify({ ...wire, keyId: 'nobody' })))).toBe('E_CONTROL_UNKNOWN_KEY');
  });

  it('survives a nesting bomb and a non-object payload without throwing', () => {
    expect(codeOf(Buffer.from(JSON.stringify({ v: 1, signed: '['.repeat(30_000) + ']'.repeat(30_000) })))).toBe('E_CONTROL_MALFORMED');
    expect(codeOf(Buffer.from('null'))).toBe('E_CONTROL_MALFORMED');
    expect(codeOf(Buffer.from('"\\ud800"'))).toBe('E_CONTROL_MALFORMED');
  });
});

describe('fleet keys', () => {
  it('refuses RSA and P-384 keys with E_CONTROL_KEY naming the key', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    for (const pem of [rsa, p384, 'not a key']) {
      let caught: unknown;
      try {
        parsePublicKey('ops', pem);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(EdgevolveError);
      expect((caught as EdgevolveError).code).toBe('E_CONTROL_KEY');
    }
  });

  it('reads keys given inline or as a file path, and names the keyId of an unreadable one', async () => {
    const tmp = await makeTempDir();
    try {
      const file = join(tmp.dir, 'fleet.pub');
      const other = pair('b');
      await writeFile(file, other.publicPem);
      const { readFile } = await import('node:fs/promises');
      const readText = (path: string) => readFile(path, 'utf8');
      const keys = await resolveFleetKeys({ a: key.publicPem, b: file }, readText);
      expect([...keys.keys()]).toEqual(['a', 'b']);
      expect(keys.get('b')?.type).toBe('ed25519');
      await expect(resolveFleetKeys({ missing: join(tmp.dir, 'nope.pem') }, readText)).rejects.toMatchObject({ code: 'E_CONTROL_KEY', context: { keyId: 'missing' } });
    } finally {
      await tmp.cleanup();
    }
  });
});
