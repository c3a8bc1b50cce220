// src/serve: the Open Inference Protocol v2 HTTP server over runtime/serve's tick scheduler.
export { createServer, DEFAULT_BODY_LIMIT } from './server.js';
export type { LoomServer, ServeOptions, ServeRunner } from './server.js';
export { decodeInferRequest, encodeInferResponse, modelMetadata, oipDatatype, describeOip, tensorToJson, MODEL_VERSION } from './oip.js';
export type { OipDatatype, OipModelMetadata, OipTensorMetadata, DecodedInfer, RequestedOutput } from './oip.js';
