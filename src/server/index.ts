/** server/: the local inference API (KServe v2 Open Inference Protocol over HTTP), health and Prometheus metrics. */
export {
  createInferenceServer,
  type InferenceServer,
  type InferenceServerOptions,
  type InferenceServerLimits,
  type ListenAddress,
  type ListeningAddress,
} from './server.ts';
export { decodeInferenceRequest, type DecodedRequest, type RequestedOutput } from './decode.ts';
export { encodeInferenceResponse, binaryBytes, type EncodedResponse, type ResponseOutput } from './encode.ts';
export { kserveDatatypeInfo, kserveDatatypeOf, KSERVE_DATATYPES, type KserveDatatype } from './datatypes.ts';
export { httpStatusOf } from './status.ts';
export { inferenceServerOptions, type ServerConfig } from './from-config.ts';
