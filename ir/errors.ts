// Every error Loom raises on purpose is a LoomError with a code; anything else reaching the CLI is a bug.
export type LoomErrorCode =
  | 'MODEL_DECODE' // bytes are not a decodable ONNX ModelProto
  | 'MODEL_INVALID' // decodes, but violates ONNX rules (missing graph, dangling value, cycle, ...)
  | 'UNSUPPORTED_OP' // op type/domain/opset Loom does not implement
  | 'UNSUPPORTED_FEATURE' // attribute value, dtype or form Loom does not implement
  | 'SHAPE' // shapes or dtypes do not fit an op's rule
  | 'EXTERNAL_DATA' // external tensor data missing or out of range
  | 'VERIFY' // IR verifier found a broken invariant
  | 'EVAL' // reference evaluation failed (bad runtime input)
  | 'USAGE' // bad command-line or API arguments
  | 'CODEGEN' // generated kernels failed to compile (nvcc): a Loom bug, reported with the compiler's words
  | 'PLAN_INVALID' // a LaunchPlan directory (plan.json, weights.bin) is corrupt, truncated or of another version
  | 'MANIFEST' // a fleet manifest is malformed (field, tenant id, model path, precision)
  | 'LIMIT' // a tensor or arena would pass a size limit (ir/limits.ts; raised with --max-*-mb)
  | 'IO'; // file system problems

export class LoomError extends Error {
  override readonly name = 'LoomError';
  constructor(
    readonly code: LoomErrorCode,
    message: string,
    options?: ErrorOptions, // { cause }: the error this one reports, where it carries more (a field path)
  ) {
    super(message, options);
  }
}

export function fail(code: LoomErrorCode, message: string): never {
  throw new LoomError(code, message);
}

export function isLoomError(e: unknown): e is LoomError {
  return e instanceof LoomError;
}
