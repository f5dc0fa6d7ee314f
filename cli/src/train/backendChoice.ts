/**
 * Which trainer backend a run uses: the one the core binary has compiled in and the machine can
 * run, asked of the binary itself (`loraforge-core backends`), never assumed. A run that needs
 * a GPU (a Job with resources.gpus > 0, or `--backend cuda`) fails with the reason when the
 * binary or the machine lacks it: it never trains on the CPU instead.
 */
import { spawnSync } from "node:child_process";
import { z } from "zod";
import { CliError } from "../errors.ts";
import type { Backend } from "./runConfig.ts";

const BackendInfo = z.object({
  name: z.string(),
  compiled: z.boolean(),
  device: z.boolean(),
  detail: z.string(),
});
export type BackendInfo = z.infer<typeof BackendInfo>;
const BackendsReply = z.object({ version: z.string(), backends: z.array(BackendInfo) });

/** What the caller asks for: one backend, or `auto` (the GPU when there is one, else the CPU). */
export type BackendRequest = Backend | "auto";

export interface BackendChoice {
  backend: Backend;
  /** One line for the log: which backend and why. */
  reason: string;
}

/** Exit 2 (usage: retrying the same Job cannot help; the Job fails at once). */
export class BackendUnavailableError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** `loraforge-core backends`, parsed; an error names the binary and what was wrong. */
export function probeBackends(corePath: string): BackendInfo[] {
  const r = spawnSync(corePath, ["backends"], { encoding: "utf8", timeout: 30_000 });
  if (r.error) throw new CliError(`${corePath} backends: ${r.error.message}`, 1);
  if (r.status !== 0)
    throw new CliError(
      `${corePath} backends exited ${r.status}: ${(r.stderr ?? "").trim() || "no message"} (a core older than the backends verb?)`,
      1,
    );
  let json: unknown;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    throw new CliError(`${corePath} backends: not JSON: ${r.stdout.slice(0, 200)}`, 1);
  }
  const parsed = BackendsReply.safeParse(json);
  if (!parsed.success)
    throw new CliError(
      `${corePath} backends: unexpected reply: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      1,
    );
  return parsed.data.backends;
}

/** The decision, from what the binary reported (pure: tested without a GPU). */
export function chooseBackend(
  request: BackendRequest,
  infos: BackendInfo[],
  why = "requested",
): BackendChoice {
  const cuda = infos.find((b) => b.name === "cuda");
  const compiled = infos.filter((b) => b.compiled).map((b) => b.name);
  if (request === "cpu") return { backend: "cpu", reason: `backend cpu (${why})` };
  const cudaOk = cuda?.compiled === true && cuda.device;
  if (request === "cuda") {
    if (cudaOk) return { backend: "cuda", reason: `backend cuda (${why}): ${cuda.detail}` };
    if (!cuda?.compiled)
      throw new BackendUnavailableError(
        `${why} needs the cuda backend, but this loraforge-core was built without it (compiled in: ${compiled.join(", ")}); use the CUDA trainer image (or a core built with -DLORAFORGE_CUDA=ON)`,
      );
    throw new BackendUnavailableError(
      `${why} needs a GPU, but the cuda backend found none: ${cuda.detail}; it will not train on the CPU instead`,
    );
  }
  if (cudaOk) return { backend: "cuda", reason: `backend cuda (auto): ${cuda.detail}` };
  const whyNot = cuda?.compiled ? cuda.detail : "cuda is not compiled into this loraforge-core";
  return { backend: "cpu", reason: `backend cpu (auto: ${whyNot})` };
}

/** The variable the operator sets under its test-only setting (operator ENV.cpuTrainerSetting). */
export const CPU_TRAINER_SETTING_ENV = "LORAFORGE_CPU_TRAINER_SETTING";

/**
 * The backend of a trainer Job: cuda for a run with GPUs (or it fails, see chooseBackend), cpu
 * without. `cpuTrainerSetting` is the name of the cluster's TEST-ONLY setting (the operator
 * passes it in CPU_TRAINER_SETTING_ENV) under which a GPU run trains on the CPU backend; the
 * reason names it, so the switch is never silent.
 */
export function jobBackend(
  gpus: number,
  infos: BackendInfo[],
  cpuTrainerSetting: string | undefined,
): BackendChoice {
  if (gpus > 0 && cpuTrainerSetting !== undefined) {
    if (!/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/.test(cpuTrainerSetting))
      throw new CliError(
        `environment: ${CPU_TRAINER_SETTING_ENV}: "${cpuTrainerSetting.slice(0, 80)}" is not a setting name (the operator sets it to its chart value's name)`,
        2,
      );
    return {
      backend: "cpu",
      reason: `backend cpu for resources.gpus ${gpus}: training on CPU under the cluster's test-only setting ${cpuTrainerSetting} (the GPUs are requested, not used)`,
    };
  }
  return chooseBackend(gpus > 0 ? "cuda" : "cpu", infos, `resources.gpus ${gpus}`);
}
