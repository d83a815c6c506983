/**
 * The error catalogue: every code edgevolve can fail with, what it means and what
 * the user can do about it. The README's error table is generated from this list
 * (`npm run edgevolve -- errors`), so a code without an entry fails to compile.
 */
export const ERROR_CODES = {
  E_USAGE: { retryable: false, help: 'The command line is wrong; run with --help.' },
  E_CONFIG_INVALID: { retryable: false, help: 'A configuration value is invalid; the message names the key and the file.' },
  E_IO: { retryable: true, help: 'A file could not be read or written; check the path, permissions and free space.' },
  E_INTERNAL: { retryable: false, help: 'A bug in edgevolve; please report it with the log.' },

  // onnx/: decoding and validating models
  E_ONNX_TRUNCATED: { retryable: false, help: 'The file ends in the middle of a protobuf field: it was cut short (incomplete download or copy).' },
  E_ONNX_DECODE: { retryable: false, help: 'The file is not a valid ONNX protobuf (corrupted bytes or not an ONNX model).' },
  E_ONNX_TOO_LARGE: { retryable: false, help: 'The model or one of its tensors exceeds a configured limit (limits.maxModelBytes, limits.maxTensorBytes, ...).' },
  E_ONNX_TOO_DEEP: { retryable: false, help: 'Subgraphs are nested deeper than limits.maxGraphDepth.' },
  E_ONNX_INVALID: { retryable: false, help: 'The model is structurally invalid; the findings list each problem with its node or value name.' },
  E_ONNX_TENSOR: { retryable: false, help: 'A tensor is malformed: its data disagrees with its dims or element type.' },
  E_ONNX_EXTERNAL_DATA: { retryable: false, help: 'A tensor\'s external_data points outside the model directory, to a missing file, or past its end.' },
  E_ONNX_UNSUPPORTED: { retryable: false, help: 'The model uses an element type or construct this operation does not support.' },
  E_ONNX_GRAPH_EDIT: { retryable: false, help: 'A graph edit would break the graph (unknown node, name clash, or a cycle).' },
} as const satisfies Record<string, { retryable: boolean; help: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
