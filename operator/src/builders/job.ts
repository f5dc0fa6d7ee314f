// spec → the training Job (and the ConfigMap that carries the spec into it). Pure: the
// same LoraFineTune and settings always give the same objects, which is what makes
// server-side apply idempotent and a restarted operator harmless.

import {
  API_VERSION,
  KIND,
  type LoraFineTuneSpec,
  NON_RETRYABLE_EXIT_CODES,
  runOutputFolder,
} from "@loraforge/crds";
import { stringify } from "yaml";
import type { TrainerPodSettings } from "../config.ts";
import {
  CPU_TRAINER_TEST_SETTING,
  GPU_PRODUCT_LABEL,
  GPU_RESOURCE,
  jobName,
  KUEUE_PRIORITY_CLASS_LABEL,
  KUEUE_QUEUE_LABEL,
  runAccountName,
  runLabels,
  specConfigMapName,
} from "../naming.ts";
import { canonicalImage } from "../policy.ts";
import {
  DEFAULT_TRAINER_POD_SECURITY_CONTEXT,
  DEFAULT_TRAINER_SECURITY_CONTEXT,
} from "../securityContext.ts";
import { type OwnedRun, ownerReference } from "./owner.ts";

export interface JobSettings {
  trainerImage: string;
  pullPolicy: "Always" | "IfNotPresent" | "Never";
  backoffLimit: number;
  /** The GPU product the run was validated against (adds a node selector unless Kueue owns placement). */
  gpuProduct: string | undefined;
  /** The admin's settings of every trainer pod (grace period, memory default, volume sizes). */
  pod: TrainerPodSettings;
}

export const TRAINER_CONTAINER = "trainer";
/** The init container that copies an image model into the sources volume. */
export const MODEL_IMAGE_CONTAINER = "model-image";
export const SPEC_DIR = "/etc/loraforge";
export const SPEC_FILE = `${SPEC_DIR}/spec.yaml`;
export const PVC_ROOT = "/mnt/pvc";
/** The emptyDir fetched sources go to (uri and git sources, an image model's copy). */
export const SOURCES_DIR = "/mnt/sources";
/** The admin's extra CA bundle (trainer.caBundle) is mounted here as ca.crt. */
export const CA_DIR = "/etc/loraforge-ca";
/** Credentials Secrets are mounted at <root>/<model|dataset|output>. */
export const CREDENTIALS_ROOT = "/var/run/secrets/loraforge";
const DEFAULT_SOURCES_SIZE_LIMIT = "100Gi";
/** Environment the trainer reads its locations from (cli/src/inpod). */
export const ENV = {
  modelDir: "LORAFORGE_MODEL_DIR",
  datasetPath: "LORAFORGE_DATASET_PATH",
  outputDir: "LORAFORGE_OUTPUT_DIR",
  sourcesDir: "LORAFORGE_SOURCES_DIR",
  modelSecretDir: "LORAFORGE_MODEL_SECRET_DIR",
  datasetSecretDir: "LORAFORGE_DATASET_SECRET_DIR",
  outputSecretDir: "LORAFORGE_OUTPUT_SECRET_DIR",
  runName: "LORAFORGE_RUN_NAME",
  runNamespace: "LORAFORGE_RUN_NAMESPACE",
  caFile: "LORAFORGE_CA_FILE",
  /** TEST ONLY: the name of the setting under which a GPU run trains on the CPU backend. */
  cpuTrainerSetting: "LORAFORGE_CPU_TRAINER_SETTING",
} as const;

/** Kueue owns suspend, nodeSelector and tolerations of Jobs it manages. */
export const kueueManaged = (spec: LoraFineTuneSpec) => spec.queueName !== undefined;

function kueueLabels(spec: LoraFineTuneSpec): Record<string, string> {
  const out: Record<string, string> = { [KUEUE_QUEUE_LABEL]: spec.queueName as string };
  if (spec.priorityClass) out[KUEUE_PRIORITY_CLASS_LABEL] = spec.priorityClass;
  return out;
}

export function buildSpecConfigMap(run: OwnedRun) {
  const { lft } = run;
  // suspend is left out: it is the one field that changes, and the trainer does not need it.
  const document = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: lft.metadata.name, namespace: run.namespace, uid: run.uid },
    spec: { ...lft.spec, suspend: false },
  };
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: specConfigMapName(lft.metadata.name),
      namespace: run.namespace,
      labels: runLabels(lft.metadata.name),
      ownerReferences: [ownerReference(run)],
    },
    data: { "spec.yaml": stringify(document) },
  };
}

const claimVolume = (claim: string) => `pvc-${claim}`;

interface Mounts {
  volumes: Record<string, unknown>[];
  volumeMounts: Record<string, unknown>[];
  env: { name: string; value: string }[];
  /** Set when the model comes from an image: where the init container copies it. */
  imageModel?: { reference: string; path: string; dest: string };
}

/**
 * The trainer's locations. PVCs: one volume per distinct claim (read-only unless it holds the
 * output), mounted at /mnt/pvc/<claim>; the output is the run's own folder
 * `<path>/<name>-<uid>` so no two runs share checkpoints. Fetched sources (uri, git, an image
 * model's copy) go to the size-limited emptyDir at /mnt/sources; each named credentials Secret
 * is mounted read-only at /var/run/secrets/loraforge/<model|dataset|output>.
 */
function mountsFor(spec: LoraFineTuneSpec, runFolder: string, pod: TrainerPodSettings): Mounts {
  const claims = new Map<string, boolean>(); // claim → writable
  const env: { name: string; value: string }[] = [];
  const use = (claim: string, path: string, variable: string, writable: boolean) => {
    claims.set(claim, (claims.get(claim) ?? false) || writable);
    env.push({ name: variable, value: `${PVC_ROOT}/${claim}/${path}` });
  };
  const model = spec.baseModel.source;
  if (model.pvc) use(model.pvc.claimName, model.pvc.path, ENV.modelDir, false);
  const data = spec.dataset.source;
  if (data.pvc) use(data.pvc.claimName, data.pvc.path, ENV.datasetPath, false);
  if (spec.output.pvc)
    use(spec.output.pvc.claimName, `${spec.output.pvc.path}/${runFolder}`, ENV.outputDir, true);

  const volumes: Record<string, unknown>[] = [];
  const volumeMounts: Record<string, unknown>[] = [];
  for (const [claim, writable] of [...claims].sort(([a], [b]) => a.localeCompare(b))) {
    volumes.push({
      name: claimVolume(claim),
      persistentVolumeClaim: { claimName: claim, readOnly: !writable },
    });
    volumeMounts.push({
      name: claimVolume(claim),
      mountPath: `${PVC_ROOT}/${claim}`,
      readOnly: !writable,
    });
  }
  const mounts: Mounts = { volumes, volumeMounts, env };
  if (model.uri || model.image || data.uri || data.git) {
    volumes.push({
      name: "sources",
      emptyDir: { sizeLimit: pod.sourcesSizeLimit ?? DEFAULT_SOURCES_SIZE_LIMIT },
    });
    volumeMounts.push({ name: "sources", mountPath: SOURCES_DIR });
    env.push({ name: ENV.sourcesDir, value: SOURCES_DIR });
  }
  if (model.image) {
    // Copied out by an init container that runs the image itself: works on every container
    // runtime (an image volume needs Kubernetes 1.33+ and a runtime that supports it).
    const dest = `${SOURCES_DIR}/model`;
    mounts.imageModel = { reference: model.image.reference, path: model.image.path, dest };
    env.push({ name: ENV.modelDir, value: dest });
  }
  if (!spec.output.pvc) {
    // A URI output: the trainer writes locally, then uploads.
    volumes.push({ name: "output", emptyDir: { sizeLimit: pod.outputSizeLimit } });
    volumeMounts.push({ name: "output", mountPath: "/mnt/output" });
    env.push({ name: ENV.outputDir, value: "/mnt/output" });
  }
  const secrets: [string | undefined, string, string][] = [
    [model.secretName, "model", ENV.modelSecretDir],
    [data.secretName, "dataset", ENV.datasetSecretDir],
    [spec.output.secretName, "output", ENV.outputSecretDir],
  ];
  for (const [secretName, role, variable] of secrets) {
    if (!secretName) continue;
    // 0440: readable by the pod's fsGroup (the trainer's group), by nobody else.
    volumes.push({
      name: `credentials-${role}`,
      secret: { secretName, defaultMode: 0o440 },
    });
    volumeMounts.push({
      name: `credentials-${role}`,
      mountPath: `${CREDENTIALS_ROOT}/${role}`,
      readOnly: true,
    });
    env.push({ name: variable, value: `${CREDENTIALS_ROOT}/${role}` });
  }
  if (pod.caBundle) {
    // Not optional: a run told to trust an internal CA fails to start (the pod's waiting
    // reason names the ConfigMap) rather than fetch without it and fail on the certificate.
    volumes.push({
      name: "ca-bundle",
      configMap: {
        name: pod.caBundle.configMap,
        items: [{ key: pod.caBundle.key, path: "ca.crt" }],
      },
    });
    volumeMounts.push({ name: "ca-bundle", mountPath: CA_DIR, readOnly: true });
    env.push({ name: ENV.caFile, value: `${CA_DIR}/ca.crt` });
  }
  return mounts;
}

/** Placement from the spec as required node affinity (used where Kueue owns nodeSelector). */
function withNodeAffinity(
  affinity: Record<string, unknown> | undefined,
  selector: Record<string, string>,
): Record<string, unknown> | undefined {
  const expressions = Object.entries(selector)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => ({ key, operator: "In", values: [value] }));
  if (expressions.length === 0) return affinity;
  const base: Record<string, unknown> = affinity ?? {};
  const nodeAffinity = (base.nodeAffinity ?? {}) as Record<string, unknown>;
  const required = nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution as
    | { nodeSelectorTerms?: { matchExpressions?: unknown[] }[] }
    | undefined;
  const terms = required?.nodeSelectorTerms?.length ? required.nodeSelectorTerms : [{}];
  // Terms are ORed: the selector must hold in each of them.
  const merged = terms.map((t) => ({
    ...t,
    matchExpressions: [...(t.matchExpressions ?? []), ...expressions],
  }));
  return {
    ...base,
    nodeAffinity: {
      ...nodeAffinity,
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: merged },
    },
  };
}

export function buildJob(run: OwnedRun, settings: JobSettings) {
  const { lft } = run;
  const { spec } = lft;
  const name = lft.metadata.name;
  const labels = runLabels(name);
  const kueue = kueueManaged(spec);
  const mounts = mountsFor(spec, runOutputFolder(name, run.uid), settings.pod);

  const resources: Record<string, Record<string, string>> = { requests: {}, limits: {} };
  const requests = resources.requests as Record<string, string>;
  const limits = resources.limits as Record<string, string>;
  if (spec.resources.gpus > 0) {
    requests[GPU_RESOURCE] = String(spec.resources.gpus);
    limits[GPU_RESOURCE] = String(spec.resources.gpus);
  }
  if (spec.resources.cpu) requests.cpu = spec.resources.cpu;
  // Every trainer has a memory limit (validation refuses a run without one): the spec's,
  // else the admin's default. Request = limit, so the pod is never the first to be evicted
  // for memory it was promised.
  const memory = spec.resources.memory ?? settings.pod.defaultMemory;
  if (memory) {
    requests.memory = memory;
    limits.memory = memory;
  }

  const selector: Record<string, string> = { ...(spec.resources.nodeSelector ?? {}) };
  if (settings.gpuProduct && spec.resources.gpus > 0)
    selector[GPU_PRODUCT_LABEL] = settings.gpuProduct;

  const podSpec: Record<string, unknown> = {
    restartPolicy: "Never", // required by podFailurePolicy; retries are new pods
    // After SIGTERM (preemption, eviction, suspend) the trainer finishes its micro-batch and
    // writes a checkpoint; this is how long it gets before SIGKILL.
    terminationGracePeriodSeconds:
      spec.resources.terminationGracePeriodSeconds ?? settings.pod.terminationGracePeriodSeconds,
    serviceAccountName: runAccountName(name),
    automountServiceAccountToken: true, // the trainer patches its own status with it
    enableServiceLinks: false,
    securityContext: settings.pod.podSecurityContext ?? DEFAULT_TRAINER_POD_SECURITY_CONTEXT,
    containers: [
      {
        name: TRAINER_CONTAINER,
        image: settings.trainerImage,
        imagePullPolicy: settings.pullPolicy,
        command: ["loraforge", "job", "--spec", SPEC_FILE],
        env: [
          { name: ENV.runName, value: name },
          { name: ENV.runNamespace, value: run.namespace },
          ...mounts.env,
          // The pod still requests its GPUs (so quota, Kueue and the scheduler see a GPU run);
          // only the backend changes, and the trainer logs why.
          ...(settings.pod.cpuTrainerForGpuRuns && spec.resources.gpus > 0
            ? [{ name: ENV.cpuTrainerSetting, value: CPU_TRAINER_TEST_SETTING }]
            : []),
        ],
        resources,
        volumeMounts: [
          { name: "spec", mountPath: SPEC_DIR, readOnly: true },
          { name: "dshm", mountPath: "/dev/shm" },
          { name: "tmp", mountPath: "/tmp" },
          ...mounts.volumeMounts,
        ],
        // The trainer writes its error there; the operator copies it into status.failure.
        terminationMessagePath: "/dev/termination-log",
        terminationMessagePolicy: "FallbackToLogsOnError",
        securityContext: settings.pod.securityContext ?? DEFAULT_TRAINER_SECURITY_CONTEXT,
      },
    ],
    volumes: [
      { name: "spec", configMap: { name: specConfigMapName(name) } },
      { name: "dshm", emptyDir: { medium: "Memory", sizeLimit: spec.resources.sharedMemory } },
      { name: "tmp", emptyDir: { sizeLimit: settings.pod.tmpSizeLimit } },
      ...mounts.volumes,
    ],
  };
  if (mounts.imageModel) {
    const { reference, path, dest } = mounts.imageModel;
    podSpec.initContainers = [
      {
        name: MODEL_IMAGE_CONTAINER,
        // fully qualified (docker.io/library/… for a short name): the registry the admin's
        // policy allowed is the one the admission policy sees
        image: canonicalImage(reference),
        imagePullPolicy: "IfNotPresent",
        // The image's own cp (POSIX: -R recursive, -L follows links such as a Hugging Face
        // cache's blobs); the image needs one (FROM busybox or any distro base).
        command: ["cp", "-R", "-L", `/${path}`, dest],
        resources: memory ? { requests: { memory }, limits: { memory } } : {},
        volumeMounts: [{ name: "sources", mountPath: SOURCES_DIR }],
        terminationMessagePolicy: "FallbackToLogsOnError",
        securityContext: settings.pod.securityContext ?? DEFAULT_TRAINER_SECURITY_CONTEXT,
      },
    ];
  }
  if (settings.pod.imagePullSecrets.length > 0)
    podSpec.imagePullSecrets = settings.pod.imagePullSecrets.map((name) => ({ name }));
  if (kueue) {
    // Kueue writes nodeSelector and tolerations from the ResourceFlavor on admission:
    // the spec's selector goes in as node affinity, tolerations come from the flavor.
    const affinity = withNodeAffinity(spec.resources.affinity, selector);
    if (affinity) podSpec.affinity = affinity;
  } else {
    if (Object.keys(selector).length > 0) podSpec.nodeSelector = selector;
    if (spec.resources.tolerations?.length) podSpec.tolerations = spec.resources.tolerations;
    if (spec.resources.affinity) podSpec.affinity = spec.resources.affinity;
  }

  const jobSpec: Record<string, unknown> = {
    backoffLimit: settings.backoffLimit,
    // Retries keep the output volume, so a retried pod resumes from the newest checkpoint.
    podFailurePolicy: {
      rules: [
        {
          action: "FailJob",
          onExitCodes: {
            containerName: TRAINER_CONTAINER,
            operator: "In",
            values: [...NON_RETRYABLE_EXIT_CODES],
          },
        },
        { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
      ],
    },
    template: { metadata: { labels }, spec: podSpec },
  };
  // A queued Job is created suspended and only Kueue unsuspends it (on admission) or suspends
  // it again (preemption); the operator applies the Job once and never writes suspend later.
  jobSpec.suspend = kueue ? true : spec.suspend;

  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: jobName(name),
      namespace: run.namespace,
      labels: kueue ? { ...labels, ...kueueLabels(spec) } : labels,
      ownerReferences: [ownerReference(run)],
    },
    spec: jobSpec,
  };
}
