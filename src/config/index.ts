export { configSchema, onnxLimitsSchema, DEFAULT_ONNX_LIMITS, type Config, type OnnxLimits } from './schema.ts';
export { loadConfig, validateConfig, applyEnvOverrides, type ConfigSource } from './load.ts';
