/** server/: the local inference API (KServe v2 Open Inference Protocol over HTTP), health and Prometheus metrics. */
export {
  createInferenceServer,
  type InferenceServer,
  type InferenceServerOptions,
  type InferenceServerLimits,
  type ListenAddress,
  type ListeningAddress,
  type ServerTransport,
} from './server.ts';
export { decodeInferenceRequest, decodeInferenceResponse, type DecodedRequest, type DecodedResponse, type RequestedOutput } from './decode.ts';
export { encodeInferenceResponse, encodeInferenceRequest, binaryBytes, type EncodedResponse, type ResponseOutput, type RequestOptions } from './encode.ts';
export { kserveDatatypeInfo, kserveDatatypeOf, KSERVE_DATATYPES, type KserveDatatype } from './datatypes.ts';
export { httpStatusOf } from './status.ts';
export { inferenceServerOptions, type ServerConfig } from './from-config.ts';
export { KserveClient, type KserveClientOptions, type ClientInferOptions } from './client.ts';
export { parseInputArgument, loadInputs, topK, type InputArgument, type ModelMetadataInputs, type TopK } from './infer-inputs.ts';
