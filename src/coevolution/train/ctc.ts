/**
 * Greedy CTC decoding of a recogniser's per-timestep class scores [N, T, C]: the best class
 * at each step, repeats merged, blanks (class 0) dropped. `alphabet[c]` is the text of
 * class c (PaddleOCR: index 0 'blank', then the lines of ppocr_keys_v1.txt, then ' ').
 */
export function ctcGreedyDecode(scores: Float32Array, dims: readonly number[], alphabet: readonly string[]): string[] {
  const [n = 0, steps = 0, classes = 0] = dims;
  const texts: string[] = [];
  for (let s = 0; s < n; s++) {
    let text = '';
    let previous = -1;
    for (let t = 0; t < steps; t++) {
      const row = (s * steps + t) * classes;
      let best = 0;
      for (let c = 1; c < classes; c++) if (scores[row + c]! > scores[row + best]!) best = c;
      if (best !== previous && best !== 0) text += alphabet[best] ?? '?';
      previous = best;
    }
    texts.push(text);
  }
  return texts;
}

/** PaddleOCR's recogniser alphabet from the text of its key file (one character per line). */
export function paddleOcrAlphabet(keysText: string): string[] {
  const lines = keysText.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return ['blank', ...lines, ' '];
}
