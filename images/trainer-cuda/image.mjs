// trainer-cuda: the trainer with loraforge-core built with its CUDA backend (sm_75, sm_80, sm_90;
// CUDA 13 cannot build for sm_70, see native/cuda/toolchain.sh), plus the CUDA 13.0 runtime and
// cuBLAS shared libraries from NVIDIA's PyPI wheels. The driver (libcuda.so) comes from the node
// at run time (NVIDIA container toolkit); without one, `loraforge-core backends` says so and a
// GPU run fails naming why — it never trains on the CPU unasked.
import { TRAINER_BASE, trainerFiles } from "../trainer.mjs";

/** Wheels pinned by version; the libraries are copied from their nvidia/cu13/lib folder. */
const CUDA_WHEELS = [
  { name: "nvidia-cuda-runtime", version: "13.0.96", libs: ["libcudart.so.13"] },
  { name: "nvidia-cublas", version: "13.1.0.3", libs: ["libcublas.so.13", "libcublasLt.so.13"] },
];
const CUDA_LIB_DIR = "/usr/local/cuda/lib64";

/** @type {import("../build.mjs").ImageDefinition} */
export default {
  name: "trainer-cuda",
  description:
    "LoraForge trainer (core with the CUDA backend for sm_75/80/90, CUDA 13 runtime + cuBLAS)",
  base: TRAINER_BASE,
  layers: async (inputs) => [
    // the big, rarely changing layer first, so a new cli or core changes only the small one
    {
      name: "cuda",
      files: (
        await Promise.all(
          CUDA_WHEELS.map(async (w) => {
            const libs = await inputs.wheelLibs(w.name, w.version, w.libs);
            return libs.map((l) => ({ path: `${CUDA_LIB_DIR}/${l.name}`, from: l.path }));
          }),
        )
      ).flat(),
    },
    { name: "loraforge", files: await trainerFiles(inputs, { cuda: true }) },
  ],
  config: {
    entrypoint: ["/usr/local/bin/loraforge"],
    env: {
      LORAFORGE_CORE: "/usr/local/bin/loraforge-core",
      LD_LIBRARY_PATH: CUDA_LIB_DIR,
      // the device plugin / container toolkit mounts the driver (libcuda.so) at run time
      NVIDIA_VISIBLE_DEVICES: "all",
      NVIDIA_DRIVER_CAPABILITIES: "compute,utility",
    },
    labels: {
      "dev.loraforge.core.backends": "cpu,cuda",
      "dev.loraforge.cuda.architectures": "sm_75,sm_80,sm_90",
      "dev.loraforge.cuda.runtime": CUDA_WHEELS.map((w) => `${w.name}==${w.version}`).join(","),
    },
  },
};
