/**
 * A pre-scan of the protobuf wire format, run before protobufjs sees the bytes.
 * protobufjs decodes nested messages by recursion without a depth limit and trusts
 * wire types and length prefixes; this scan walks the same bytes iteratively with
 * the schema in hand and rejects, with a typed error, what would make protobufjs
 * overflow the stack, misread a field or run past the end:
 * - truncated varints and length-delimited fields longer than their enclosing message,
 * - wire types that disagree with the schema (so protobufjs never reinterprets a
 *   scalar as a nested message), and groups (never used by ONNX),
 * - subgraph nesting deeper than limits.maxGraphDepth, and message nesting deeper
 *   than a cap derived from it,
 * - packed repeated fields that end in the middle of an element,
 * - a singular message field (or oneof) given twice, which C++ protobuf (onnxruntime)
 *   merges and protobufjs replaces: validation must see the model onnxruntime runs.
 * It does not look inside bytes/string/packed payloads, so its cost is a small
 * fraction of the decode itself.
 */
import protobuf from 'protobufjs';
import { EdgevolveError } from '../errors/index.ts';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

interface FieldShape {
  readonly name: string;
  /** Bit set of accepted wire types. */
  readonly wireTypes: number;
  /** Set for message-typed fields: the layout to scan the payload with. */
  readonly message?: MessageShape;
  /**
   * For singular message fields and oneof members: a bit that may be set once per
   * message. protobuf merges a repeated occurrence (C++, as onnxruntime does) but
   * protobufjs replaces it, so the two would see different models; we refuse it.
   */
  readonly onceBit: number;
  /** Repeated 64-bit integers: protobufjs makes one Long object per element. */
  readonly longElements: boolean;
  /** For repeated scalars: the wire type of one element when packed (to check a packed payload's framing). */
  readonly packedElement?: number;
}

interface MessageShape {
  readonly name: string;
  readonly isGraph: boolean;
  readonly fields: Map<number, FieldShape>;
}

const shapes = new WeakMap<protobuf.Type, MessageShape>();
// Varint-encoded only (onnx.proto has no fixed64 fields), so elements are counted by terminating bytes.
const LONG_TYPES: ReadonlySet<string> = new Set(['int64', 'uint64', 'sint64']);

/** Builds (once per type) the field table the scan needs from the protobufjs reflection. */
export function messageShape(type: protobuf.Type): MessageShape {
  const known = shapes.get(type);
  if (known !== undefined) return known;
  const fields = new Map<number, FieldShape>();
  const shape: MessageShape = { name: type.fullName.replace(/^\./, ''), isGraph: type.fullName === '.onnx.GraphProto', fields };
  shapes.set(type, shape);
  const onceGroups = new Map<string, number>();
  const onceBitFor = (group: string): number => {
    let bit = onceGroups.get(group);
    if (bit === undefined) {
      if (onceGroups.size >= 31) throw new EdgevolveError('E_INTERNAL', `onnx.proto message ${shape.name} has too many singular fields for the scan`);
      bit = 1 << onceGroups.size;
      onceGroups.set(group, bit);
    }
    return bit;
  };
  for (const field of type.fieldsArray) {
    field.resolve();
    const resolved = field.resolvedType;
    const group = field.partOf ? `oneof:${field.partOf.name}` : `field:${field.id}`;
    if (resolved instanceof protobuf.Type) {
      const onceBit = field.repeated ? 0 : onceBitFor(group);
      fields.set(field.id, { name: field.name, wireTypes: 1 << WIRE_LENGTH_DELIMITED, message: messageShape(resolved), onceBit, longElements: false });
      continue;
    }
    const basic = resolved instanceof protobuf.Enum ? WIRE_VARINT : (protobuf.types.basic as Record<string, number | undefined>)[field.type];
    if (basic === undefined) throw new EdgevolveError('E_INTERNAL', `onnx.proto field ${field.fullName} has no wire type`);
    let wireTypes = 1 << basic;
    // Repeated scalars may come packed or unpacked whatever the schema says (protobuf spec).
    if (field.repeated && basic !== WIRE_LENGTH_DELIMITED) wireTypes |= 1 << WIRE_LENGTH_DELIMITED;
    // Scalars in a oneof: a second member would leave protobufjs with two set fields.
    const longElements = field.repeated && LONG_TYPES.has(field.type);
    const packedElement = field.repeated && basic !== WIRE_LENGTH_DELIMITED ? basic : undefined;
    fields.set(field.id, { name: field.name, wireTypes, onceBit: field.partOf ? onceBitFor(group) : 0, longElements, ...(packedElement === undefined ? {} : { packedElement }) });
  }
  return shape;
}

export interface WireScanLimits {
  maxGraphDepth: number;
  maxNodes: number;
}

/**
 * How many JS objects the decode may create: messages plus int64 elements (one Long
 * each). Real models have 2–3 messages per node (PaddleOCR: 2.3); a file of empty
 * messages or 1-byte int64 varints would otherwise grow 50–100× in the heap and take
 * the process down long before limits.maxNodes is checked.
 */
export function maxDecodedObjects(limits: WireScanLimits): number {
  return 16 * limits.maxNodes + 1_000_000;
}

/** Message nesting allowed on top of graphs: Model→Graph→Node→Attribute→Graph is 3 per level, types nest too. */
export function maxMessageDepth(limits: WireScanLimits): number {
  return 4 * limits.maxGraphDepth + 64;
}

interface Frame {
  end: number;
  shape: MessageShape;
  /** onceBits already seen in this message. */
  seen: number;
}

function truncated(what: string, pos: number, size: number): EdgevolveError {
  return new EdgevolveError('E_ONNX_TRUNCATED', `model is truncated: ${what} at byte ${pos} runs past the end of its message (file is ${size} bytes)`, {
    context: { offset: pos, size },
  });
}

/**
 * A packed payload must hold whole elements: protobufjs reads elements until it passes
 * the payload's end, so a ragged tail would make it read into the next field.
 */
function checkPackedFraming(bytes: Uint8Array, start: number, length: number, field: FieldShape, message: string, tagStart: number): void {
  const ragged =
    field.packedElement === WIRE_FIXED32
      ? length % 4 !== 0
      : field.packedElement === WIRE_FIXED64
        ? length % 8 !== 0
        : length > 0 && (bytes[start + length - 1]! & 0x80) !== 0;
  if (ragged) {
    throw new EdgevolveError('E_ONNX_DECODE', `not a valid ONNX model: packed field ${message}.${field.name} at byte ${tagStart} ends in the middle of an element`, {
      context: { offset: tagStart, message, field: field.name, length },
    });
  }
}

/**
 * Scans `bytes` as a message of `root` and throws E_ONNX_TRUNCATED, E_ONNX_DECODE or
 * E_ONNX_TOO_DEEP on the first problem. Iterative: its own stack is an array.
 */
export function scanWireFormat(bytes: Uint8Array, root: protobuf.Type, limits: WireScanLimits): void {
  const size = bytes.length;
  const maxDepth = maxMessageDepth(limits);
  const maxObjects = maxDecodedObjects(limits);
  let objects = 0;
  const tooManyObjects = (at: number): EdgevolveError =>
    new EdgevolveError('E_ONNX_TOO_LARGE', `model would decode into more than ${maxObjects} objects (16 × limits.maxNodes + 1,000,000); stopped at byte ${at}`, {
      context: { offset: at, maxObjects },
    });
  const stack: Frame[] = [{ end: size, shape: messageShape(root), seen: 0 }];
  let graphDepth = 0;
  let pos = 0;

  // Reads a varint of up to 10 bytes; returns its value as a double (exact below 2^53, enough for tags and lengths).
  const readVarint = (end: number, what: string): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw truncated(what, pos, size);
      const byte = bytes[pos++]!;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return value;
      scale *= 128;
    }
    throw new EdgevolveError('E_ONNX_DECODE', `not a valid ONNX model: ${what} at byte ${pos - 10} is a varint longer than 10 bytes`, {
      context: { offset: pos - 10, size },
    });
  };

  for (;;) {
    let frame = stack[stack.length - 1]!;
    while (pos === frame.end) {
      stack.pop();
      if (frame.shape.isGraph) graphDepth -= 1;
      if (stack.length === 0) return;
      frame = stack[stack.length - 1]!;
    }
    const tagStart = pos;
    const tag = readVarint(frame.end, 'a field tag');
    const fieldNumber = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (fieldNumber === 0 || fieldNumber > 0x1fffffff) {
      throw new EdgevolveError('E_ONNX_DECODE', `not a valid ONNX model: invalid field number ${fieldNumber} in ${frame.shape.name} at byte ${tagStart}`, {
        context: { offset: tagStart, message: frame.shape.name },
      });
    }
    const field = frame.shape.fields.get(fieldNumber);
    if (field !== undefined && (field.wireTypes & (1 << wireType)) === 0) {
      throw new EdgevolveError(
        'E_ONNX_DECODE',
        `not a valid ONNX model: field ${frame.shape.name}.${field.name} at byte ${tagStart} has wire type ${wireType}, which its type does not allow`,
        { context: { offset: tagStart, message: frame.shape.name, field: field.name, wireType } },
      );
    }
    if (field !== undefined && field.onceBit !== 0) {
      if ((frame.seen & field.onceBit) !== 0) {
        throw new EdgevolveError(
          'E_ONNX_DECODE',
          `not a valid ONNX model: ${frame.shape.name}.${field.name} at byte ${tagStart} is set twice (or with another member of its oneof); protobuf readers disagree on what that means`,
          { context: { offset: tagStart, message: frame.shape.name, field: field.name } },
        );
      }
      frame.seen |= field.onceBit;
    }
    switch (wireType) {
      case WIRE_VARINT:
        readVarint(frame.end, `field ${frame.shape.name}.${field?.name ?? fieldNumber}`);
        if (field?.longElements === true && ++objects > maxObjects) throw tooManyObjects(tagStart);
        break;
      case WIRE_FIXED64:
        if (pos + 8 > frame.end) throw truncated(`a 64-bit field`, tagStart, size);
        pos += 8;
        break;
      case WIRE_FIXED32:
        if (pos + 4 > frame.end) throw truncated(`a 32-bit field`, tagStart, size);
        pos += 4;
        break;
      case WIRE_LENGTH_DELIMITED: {
        const what = `field ${frame.shape.name}.${field?.name ?? fieldNumber}`;
        const length = readVarint(frame.end, what);
        if (length > frame.end - pos) throw truncated(`${what} (declared ${length} bytes)`, tagStart, size);
        if (field?.message !== undefined) {
          const nested = field.message;
          if (nested.isGraph) {
            graphDepth += 1;
            // The main graph is depth 0; each If/Loop/Scan body one more than its owner's graph.
            if (graphDepth - 1 > limits.maxGraphDepth) {
              throw new EdgevolveError('E_ONNX_TOO_DEEP', `subgraphs are nested more than limits.maxGraphDepth (${limits.maxGraphDepth}) deep`, {
                context: { offset: tagStart, maxGraphDepth: limits.maxGraphDepth },
              });
            }
          }
          if (stack.length >= maxDepth) {
            throw new EdgevolveError('E_ONNX_TOO_DEEP', `messages are nested more than ${maxDepth} deep (at ${nested.name}, byte ${tagStart})`, {
              context: { offset: tagStart, maxMessageDepth: maxDepth },
            });
          }
          if (++objects > maxObjects) throw tooManyObjects(tagStart);
          stack.push({ end: pos + length, shape: nested, seen: 0 });
        } else {
          if (field?.packedElement !== undefined) checkPackedFraming(bytes, pos, length, field, frame.shape.name, tagStart);
          if (field?.longElements === true) {
            // Packed: one element per varint, i.e. per byte without the continuation bit.
            for (let i = pos; i < pos + length; i++) if ((bytes[i]! & 0x80) === 0) objects += 1;
            if (objects > maxObjects) throw tooManyObjects(tagStart);
          }
          pos += length;
        }
        break;
      }
      case WIRE_START_GROUP:
      case WIRE_END_GROUP:
      default:
        throw new EdgevolveError('E_ONNX_DECODE', `not a valid ONNX model: wire type ${wireType} (${wireType === 3 || wireType === 4 ? 'group, never used by ONNX' : 'invalid'}) at byte ${tagStart}`, {
          context: { offset: tagStart, wireType },
        });
    }
  }
}
