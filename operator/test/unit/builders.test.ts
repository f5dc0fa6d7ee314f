import assert from "node:assert/strict";
import { test } from "node:test";
import { GROUP, NON_RETRYABLE_EXIT_CODES, PLURAL } from "@loraforge/crds";
import { parse } from "yaml";
import { buildJob, buildSpecConfigMap, SPEC_FILE } from "../../src/builders/job.ts";
import { buildRole, buildRoleBinding, buildServiceAccount } from "../../src/builders/rbac.ts";
import { childName, jobName, runAccountName, specConfigMapName } from "../../src/naming.ts";
import { lft } from "../support/fixtures.ts";

const settings = {
  trainerImage: "ghcr.io/loraforge/trainer:1",
  pullPolicy: "IfNotPresent" as const,
  backoffLimit: 3,
  gpuProduct: "Tesla-V100-SXM2-32GB",
  pod: {
    terminationGracePeriodSeconds: 120,
    defaultMemory: "48Gi",
    tmpSizeLimit: "8Gi",
    outputSizeLimit: "20Gi",
    imagePullSecrets: [],
  },
};
const run = (o = {}) => ({ lft: lft(o), uid: "uid-1", namespace: "ml" });
// biome-ignore lint/suspicious/noExplicitAny: test access to built JSON
const podOf = (job: any) => job.spec.template.spec;

test("the Job runs the trainer with the mounted spec, GPUs, volumes and an owner reference", () => {
  const job = buildJob(run(), settings);
  assert.equal(job.metadata.name, "alpaca-7b-train");
  assert.deepEqual(job.metadata.ownerReferences, [
    {
      apiVersion: "loraforge.dev/v1alpha1",
      kind: "LoraFineTune",
      name: "alpaca-7b",
      uid: "uid-1",
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  const pod = podOf(job);
  const c = pod.containers[0];
  assert.deepEqual(c.command, ["loraforge", "job", "--spec", SPEC_FILE]);
  assert.equal(c.image, settings.trainerImage);
  assert.equal(c.resources.limits["nvidia.com/gpu"], "1");
  assert.equal(c.resources.requests["nvidia.com/gpu"], "1");
  assert.deepEqual(pod.nodeSelector, { "nvidia.com/gpu.product": "Tesla-V100-SXM2-32GB" });
  assert.equal(pod.restartPolicy, "Never");
  assert.equal(pod.serviceAccountName, "alpaca-7b-trainer");
  const vols = Object.fromEntries(pod.volumes.map((v: { name: string }) => [v.name, v]));
  assert.deepEqual(vols.dshm.emptyDir, { medium: "Memory", sizeLimit: "1Gi" });
  assert.deepEqual(vols["pvc-models"].persistentVolumeClaim, {
    claimName: "models",
    readOnly: true,
  });
  assert.deepEqual(vols["pvc-runs"].persistentVolumeClaim, { claimName: "runs", readOnly: false });
  assert.equal(vols.spec.configMap.name, "alpaca-7b-spec");
  const env = Object.fromEntries(
    c.env.map((e: { name: string; value: string }) => [e.name, e.value]),
  );
  assert.equal(env.LORAFORGE_MODEL_DIR, "/mnt/pvc/models/llama-2-7b-hf");
  assert.equal(env.LORAFORGE_DATASET_PATH, "/mnt/pvc/datasets/alpaca/cleaned.json");
  // Every run writes into its own folder: <path>/<name>-<uid>.
  assert.equal(env.LORAFORGE_OUTPUT_DIR, "/mnt/pvc/runs/alpaca-7b/alpaca-7b-uid-1");
  assert.equal(env.LORAFORGE_SOURCES_DIR, undefined, "pvc sources need no sources volume");
  assert.equal(pod.initContainers, undefined);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
});

test("trainer pods are non-root with a read-only root by default; the admin's security contexts replace that", () => {
  const pod = podOf(buildJob(run(), settings));
  assert.deepEqual(pod.securityContext, {
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    fsGroup: 1000,
    seccompProfile: { type: "RuntimeDefault" },
  });
  assert.deepEqual(pod.containers[0].securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
  });
  const podSecurityContext = { runAsNonRoot: true, runAsUser: 4242, fsGroup: 4242 };
  const securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };
  const custom = podOf(
    buildJob(run(), { ...settings, pod: { ...settings.pod, podSecurityContext, securityContext } }),
  );
  assert.deepEqual(custom.securityContext, podSecurityContext);
  assert.deepEqual(custom.containers[0].securityContext, securityContext);
});

test("podFailurePolicy fails at once on non-retryable exit codes and ignores disruptions", () => {
  const job = buildJob(run(), settings);
  // biome-ignore lint/suspicious/noExplicitAny: JSON
  const rules = (job.spec as any).podFailurePolicy.rules;
  assert.deepEqual(rules[0], {
    action: "FailJob",
    onExitCodes: {
      containerName: "trainer",
      operator: "In",
      values: [...NON_RETRYABLE_EXIT_CODES],
    },
  });
  assert.deepEqual(rules[1], {
    action: "Ignore",
    onPodConditions: [{ type: "DisruptionTarget", status: "True" }],
  });
  assert.equal(job.spec.backoffLimit, 3);
  assert.equal(job.spec.suspend, false);
});

test("spec placement (nodeSelector, tolerations, affinity) is copied without Kueue", () => {
  const tol = [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }];
  const job = buildJob(
    run({
      resources: {
        nodeSelector: { pool: "v100" },
        tolerations: tol,
        affinity: { podAntiAffinity: {} },
      },
    }),
    settings,
  );
  const pod = podOf(job);
  assert.deepEqual(pod.nodeSelector, {
    pool: "v100",
    "nvidia.com/gpu.product": "Tesla-V100-SXM2-32GB",
  });
  assert.deepEqual(pod.tolerations, tol);
  assert.deepEqual(pod.affinity, { podAntiAffinity: {} });
});

test("with a queueName: the Kueue labels, created suspended, no nodeSelector or tolerations written", () => {
  const job = buildJob(
    run({
      queueName: "v100-queue",
      resources: {
        nodeSelector: { pool: "v100" },
        tolerations: [{ key: "a", operator: "Exists" }],
      },
      priorityClass: "team-high",
    }),
    settings,
  );
  assert.equal(job.metadata.labels["kueue.x-k8s.io/queue-name"], "v100-queue");
  assert.equal(job.metadata.labels["kueue.x-k8s.io/priority-class"], "team-high");
  // Created suspended (also without Kueue's webhook); only Kueue unsuspends it.
  assert.equal(job.spec.suspend, true);
  const pod = podOf(job);
  assert.equal(pod.nodeSelector, undefined);
  assert.equal(pod.tolerations, undefined);
  const exprs =
    pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]
      .matchExpressions;
  assert.deepEqual(exprs, [
    { key: "nvidia.com/gpu.product", operator: "In", values: ["Tesla-V100-SXM2-32GB"] },
    { key: "pool", operator: "In", values: ["v100"] },
  ]);
});

test("every trainer has a memory limit: the spec's, else the admin default", () => {
  const own = podOf(buildJob(run({ resources: { memory: "64Gi" } }), settings)).containers[0];
  assert.equal(own.resources.limits.memory, "64Gi");
  assert.equal(own.resources.requests.memory, "64Gi");
  const dflt = podOf(buildJob(run(), settings)).containers[0];
  assert.equal(dflt.resources.limits.memory, "48Gi");
  assert.equal(dflt.resources.requests.memory, "48Gi");
});

test("every emptyDir has a size limit (/tmp, /dev/shm and a URI output's run directory)", () => {
  const r = run();
  r.lft.spec.output = { uri: "s3://runs/alpaca" };
  const pod = podOf(buildJob(r, settings));
  const dirs = pod.volumes.filter((v: { emptyDir?: unknown }) => v.emptyDir);
  assert.deepEqual(
    dirs.map((v: { name: string; emptyDir: { sizeLimit?: string } }) => [
      v.name,
      v.emptyDir.sizeLimit,
    ]),
    [
      ["dshm", "1Gi"],
      ["tmp", "8Gi"],
      ["output", "20Gi"],
    ],
  );
});

test("terminationGracePeriodSeconds: the spec's, else the admin default", () => {
  assert.equal(podOf(buildJob(run(), settings)).terminationGracePeriodSeconds, 120);
  assert.equal(
    podOf(buildJob(run({ resources: { terminationGracePeriodSeconds: 600 } }), settings))
      .terminationGracePeriodSeconds,
    600,
  );
});

test("imagePullSecrets from the operator's settings reach the trainer pod", () => {
  assert.equal(podOf(buildJob(run(), settings)).imagePullSecrets, undefined);
  const pod = podOf(
    buildJob(run(), { ...settings, pod: { ...settings.pod, imagePullSecrets: ["ghcr", "quay"] } }),
  );
  assert.deepEqual(pod.imagePullSecrets, [{ name: "ghcr" }, { name: "quay" }]);
});

test("the admin's CA bundle is mounted read-only and named by LORAFORGE_CA_FILE; none without it", () => {
  const plain = podOf(buildJob(run(), settings));
  assert.ok(!plain.volumes.some((v: { name: string }) => v.name === "ca-bundle"));
  assert.ok(!plain.containers[0].env.some((e: { name: string }) => e.name === "LORAFORGE_CA_FILE"));
  const pod = podOf(
    buildJob(run(), {
      ...settings,
      pod: { ...settings.pod, caBundle: { configMap: "internal-ca", key: "bundle.pem" } },
    }),
  );
  assert.deepEqual(
    pod.volumes.find((v: { name: string }) => v.name === "ca-bundle"),
    {
      name: "ca-bundle",
      configMap: { name: "internal-ca", items: [{ key: "bundle.pem", path: "ca.crt" }] },
    },
  );
  const trainer = pod.containers[0];
  assert.deepEqual(
    trainer.volumeMounts.find((m: { name: string }) => m.name === "ca-bundle"),
    { name: "ca-bundle", mountPath: "/etc/loraforge-ca", readOnly: true },
  );
  assert.deepEqual(
    trainer.env.find((e: { name: string }) => e.name === "LORAFORGE_CA_FILE"),
    { name: "LORAFORGE_CA_FILE", value: "/etc/loraforge-ca/ca.crt" },
  );
});

test("builders are deterministic and suspend follows the spec", () => {
  assert.deepEqual(buildJob(run(), settings), buildJob(run(), settings));
  assert.equal(buildJob(run({ suspend: true }), settings).spec.suspend, true);
});

test("one volume per claim; a claim that holds the output is writable", () => {
  const r = run();
  r.lft.spec.output = { pvc: { claimName: "models", path: "out" } };
  const pod = podOf(buildJob(r, settings));
  const pvcs = pod.volumes.filter(
    (v: { persistentVolumeClaim?: unknown }) => v.persistentVolumeClaim,
  );
  assert.deepEqual(
    pvcs.map((v: { name: string }) => v.name),
    ["pvc-datasets", "pvc-models"],
  );
  assert.equal(pvcs[1].persistentVolumeClaim.readOnly, false);
});

test("CPU runs request no GPU and select no GPU product", () => {
  const pod = podOf(
    buildJob(
      run({ training: { precision: "fp32" }, resources: { gpus: 0, gpuProduct: undefined } }),
      { ...settings, gpuProduct: undefined },
    ),
  );
  assert.equal(pod.containers[0].resources.limits["nvidia.com/gpu"], undefined);
  assert.equal(pod.nodeSelector, undefined);
});

test("the spec ConfigMap carries the resource as YAML, without suspend", () => {
  const cm = buildSpecConfigMap(run({ suspend: true }));
  const doc = parse(cm.data["spec.yaml"]);
  assert.equal(doc.metadata.name, "alpaca-7b");
  assert.equal(doc.spec.suspend, false);
  assert.equal(doc.spec.training.precision, "fp16");
});

test("the run's Role allows only get/patch on its own status", () => {
  const role = buildRole(run());
  assert.deepEqual(role.rules, [
    {
      apiGroups: [GROUP],
      resources: [`${PLURAL}/status`],
      resourceNames: ["alpaca-7b"],
      verbs: ["get", "patch"],
    },
  ]);
  const rb = buildRoleBinding(run());
  assert.deepEqual(rb.subjects, [
    { kind: "ServiceAccount", name: "alpaca-7b-trainer", namespace: "ml" },
  ]);
  assert.equal(rb.roleRef.name, role.metadata.name);
  assert.equal(buildServiceAccount(run()).automountServiceAccountToken, false);
});

test("child names stay within 63 characters and stay unique", () => {
  const long = "a".repeat(60);
  const other = `${"a".repeat(59)}b`;
  assert.ok(jobName(long).length <= 63);
  assert.notEqual(jobName(long), jobName(other));
  assert.equal(childName("short", "train"), "short-train");
  assert.match(jobName(long), /^a+-[a-z2-7]{24}-train$/);
});

test("no run name, however chosen, gets another run's cut child name", () => {
  // The attack on a short hash: name a run after the victim's cut name minus its suffix.
  for (const victim of [
    `team-${"x".repeat(55)}`,
    "b".repeat(63),
    `${"c".repeat(40)}-${"d".repeat(20)}`,
  ]) {
    for (const [suffix, name] of [
      ["train", jobName],
      ["trainer", runAccountName],
      ["spec", specConfigMapName],
    ] as const) {
      const target = name(victim);
      const crafted = target.slice(0, -(suffix.length + 1));
      assert.ok(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(crafted) && crafted.length <= 63);
      assert.notEqual(name(crafted), target, `${crafted} would get ${target}`);
    }
  }
  // Plain names are shorter than 63, cut names exactly 63: the two forms never meet.
  for (let n = 1; n <= 63; n++) {
    const run = "r".repeat(n);
    for (const suffix of ["train", "trainer", "spec"]) {
      const child = childName(run, suffix);
      if (child === `${run}-${suffix}`) assert.ok(child.length < 63);
      else assert.equal(child.length, 63);
      assert.match(child, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  }
  // A prefix that ends in '-' stays a valid label.
  assert.match(jobName(`${"e".repeat(31)}-${"f".repeat(31)}`), /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
});

// biome-ignore lint/suspicious/noExplicitAny: test access to built JSON
const envOf = (c: any): Record<string, string> =>
  Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));

test("an image model is copied by an init container (the image's own cp) into the sources volume", () => {
  const r = run();
  r.lft.spec.baseModel.source = {
    image: { reference: "registry.example.com/models/tiny:1", path: "models/tiny" },
  };
  const pod = podOf(
    buildJob(r, { ...settings, pod: { ...settings.pod, sourcesSizeLimit: "50Gi" } }),
  );
  assert.equal(pod.initContainers.length, 1);
  const init = pod.initContainers[0];
  assert.equal(init.name, "model-image");
  assert.equal(init.image, "registry.example.com/models/tiny:1");
  assert.deepEqual(init.command, ["cp", "-R", "-L", "/models/tiny", "/mnt/sources/model"]);
  assert.deepEqual(init.volumeMounts, [{ name: "sources", mountPath: "/mnt/sources" }]);
  assert.deepEqual(init.resources, { requests: { memory: "48Gi" }, limits: { memory: "48Gi" } });
  assert.equal(init.securityContext.readOnlyRootFilesystem, true);
  const vols = Object.fromEntries(pod.volumes.map((v: { name: string }) => [v.name, v]));
  assert.deepEqual(vols.sources.emptyDir, { sizeLimit: "50Gi" });
  assert.equal(
    pod.volumes.some((v: { image?: unknown }) => v.image !== undefined),
    false,
    "no image volume: it needs a runtime that supports it",
  );
  const env = envOf(pod.containers[0]);
  assert.equal(env.LORAFORGE_MODEL_DIR, "/mnt/sources/model");
  assert.equal(env.LORAFORGE_SOURCES_DIR, "/mnt/sources");
  // a short name is written fully qualified: the registry the admission policy checks
  r.lft.spec.baseModel.source = { image: { reference: "acme/tiny:1", path: "m" } };
  assert.equal(podOf(buildJob(r, settings)).initContainers[0].image, "docker.io/acme/tiny:1");
});

test("uri and git sources get the sources volume and their credentials Secrets as read-only files", () => {
  const r = run();
  r.lft.spec.baseModel.source = { uri: "hf://org/private", secretName: "hf-token" };
  r.lft.spec.dataset.source = {
    git: { repo: "https://git.example.com/d.git", ref: "a".repeat(40), path: "d.json" },
    secretName: "git-creds",
  };
  r.lft.spec.output = { uri: "s3://runs/alpaca", secretName: "s3-creds" };
  const pod = podOf(buildJob(r, settings));
  const c = pod.containers[0];
  const env = envOf(c);
  assert.equal(env.LORAFORGE_MODEL_DIR, undefined, "fetched in the pod");
  assert.equal(env.LORAFORGE_DATASET_PATH, undefined);
  assert.equal(env.LORAFORGE_SOURCES_DIR, "/mnt/sources");
  assert.equal(env.LORAFORGE_OUTPUT_DIR, "/mnt/output");
  assert.equal(env.LORAFORGE_MODEL_SECRET_DIR, "/var/run/secrets/loraforge/model");
  assert.equal(env.LORAFORGE_DATASET_SECRET_DIR, "/var/run/secrets/loraforge/dataset");
  assert.equal(env.LORAFORGE_OUTPUT_SECRET_DIR, "/var/run/secrets/loraforge/output");
  const vols = Object.fromEntries(pod.volumes.map((v: { name: string }) => [v.name, v]));
  assert.deepEqual(vols["credentials-model"].secret, {
    secretName: "hf-token",
    defaultMode: 0o440,
  });
  assert.deepEqual(vols["credentials-dataset"].secret, {
    secretName: "git-creds",
    defaultMode: 0o440,
  });
  assert.deepEqual(vols["credentials-output"].secret, {
    secretName: "s3-creds",
    defaultMode: 0o440,
  });
  assert.deepEqual(vols.sources.emptyDir, { sizeLimit: "100Gi" });
  const mounts = Object.fromEntries(c.volumeMounts.map((m: { name: string }) => [m.name, m]));
  assert.deepEqual(mounts["credentials-output"], {
    name: "credentials-output",
    mountPath: "/var/run/secrets/loraforge/output",
    readOnly: true,
  });
  // Credentials never travel as environment values.
  assert.ok(c.env.every((e: { valueFrom?: unknown }) => e.valueFrom === undefined));
});

test("two runs of one spec (different uids) write into different output folders", () => {
  const a = envOf(podOf(buildJob({ ...run(), uid: "uid-a" }, settings)).containers[0]);
  const b = envOf(podOf(buildJob({ ...run(), uid: "uid-b" }, settings)).containers[0]);
  assert.notEqual(a.LORAFORGE_OUTPUT_DIR, b.LORAFORGE_OUTPUT_DIR);
  assert.equal(b.LORAFORGE_OUTPUT_DIR, "/mnt/pvc/runs/alpaca-7b/alpaca-7b-uid-b");
});

test("the test-only CPU trainer setting: a GPU run's pod still requests the GPU and is told the setting's name; off, or without GPUs, nothing changes", () => {
  const envOf = (job: ReturnType<typeof buildJob>) =>
    Object.fromEntries(
      podOf(job).containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value]),
    );
  const on = { ...settings, pod: { ...settings.pod, cpuTrainerForGpuRuns: true } };
  const gpuJob = buildJob(run(), on);
  assert.equal(envOf(gpuJob).LORAFORGE_CPU_TRAINER_SETTING, "testing.cpuTrainerForGpuRuns");
  assert.equal(podOf(gpuJob).containers[0].resources.limits["nvidia.com/gpu"], "1");
  assert.equal(envOf(buildJob(run(), settings)).LORAFORGE_CPU_TRAINER_SETTING, undefined);
  const cpuRun = run({
    resources: { gpus: 0, gpuProduct: undefined },
    training: { precision: "fp32" },
  });
  assert.equal(envOf(buildJob(cpuRun, on)).LORAFORGE_CPU_TRAINER_SETTING, undefined);
});
