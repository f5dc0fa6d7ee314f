// trainer-cpu: what the operator's Jobs run on CPU nodes. `loraforge job` (the cli bundle) drives
// loraforge-core (native/, Release, CPU backend with OpenBLAS + OpenMP); git fetches dataset
// sources. Runs as uid 65532 with a read-only root filesystem: it writes only to mounted volumes
// and /tmp (an emptyDir in the Job).
import { TRAINER_BASE, trainerFiles } from "../trainer.mjs";

/** @type {import("../build.mjs").ImageDefinition} */
export default {
  name: "trainer-cpu",
  description: "LoraForge trainer (CPU): loraforge cli + loraforge-core",
  base: TRAINER_BASE,
  layers: async (inputs) => [{ name: "loraforge", files: await trainerFiles(inputs) }],
  config: {
    entrypoint: ["/usr/local/bin/loraforge"],
    env: { LORAFORGE_CORE: "/usr/local/bin/loraforge-core" },
    labels: { "dev.loraforge.core.backends": "cpu" },
  },
};
