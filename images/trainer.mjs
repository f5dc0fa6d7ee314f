// What trainer-cpu and trainer-cuda share: the Debian packages under the cli and the core, and
// the files of the loraforge layer.

/** Debian bookworm packages, pinned (a version the mirror no longer serves fails the build). */
export const TRAINER_BASE = {
  suite: "bookworm",
  packages: {
    // loraforge-core links libopenblas.so.0 (the OpenMP build) and libgomp.so.1
    "libopenblas0-openmp": "0.3.21+ds-4",
    libgomp1: "12.2.0-14+deb12u1",
    // git sources are fetched with the git CLI over HTTPS
    git: "1:2.39.5-0+deb12u3",
    "ca-certificates": "20250419~deb12u2",
  },
};

/**
 * node, the cli bundle and its package.json, the `loraforge` command, the core (with the CUDA
 * backend when `cuda`).
 */
export async function trainerFiles(inputs, { cuda = false } = {}) {
  const cli = await inputs.cliBundle();
  return [
    ...(await inputs.node()),
    { path: "/app/cli/package.json", from: cli.packageJson },
    ...cli.files.map((f) => ({ path: `/app/cli/dist/${f.name}`, from: f.path })),
    {
      path: "/usr/local/bin/loraforge",
      content: '#!/bin/sh\nexec /usr/local/bin/node /app/cli/dist/loraforge.mjs "$@"\n',
      mode: 0o755,
    },
    {
      path: "/usr/local/bin/loraforge-core",
      from: await (cuda ? inputs.cudaCore() : inputs.core()),
      mode: 0o755,
    },
  ];
}
