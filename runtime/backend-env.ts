// Backend switches that the CUDA backend reads from the environment (LOOM_CUDA_SPARSE, LOOM_CUDA_LANES,
// LOOM_CUDA_OVERLAP, ...: native/src reads them when a plan is created and its weights finish loading), set
// for one piece of work and restored afterwards, so one process can load the same plan under several settings.
export type BackendEnv = Readonly<Record<string, string>>;

// Runs `f` with `env` in process.env and puts back what was there (unset stays unset) once it has settled.
// Loads that overlap in time see each other's settings: await one before starting the next.
export async function withBackendEnv<T>(env: BackendEnv, f: () => Promise<T> | T): Promise<T> {
  const before = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  try {
    return await f();
  } finally {
    for (const [k, v] of before) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
