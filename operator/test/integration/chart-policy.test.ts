// The chart's guard rails, rendered by real helm and applied to the real API server:
// values.schema.json refuses bad values naming the key; `helm lint --strict` is clean;
// namespaced RBAC when watchNamespace is set; and, in cluster mode, a
// ValidatingAdmissionPolicy that lets the operator's ServiceAccount create only Jobs that
// run the trainer image as a `<run>-trainer` ServiceAccount, within the admin's policy.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { paths } from "@loraforge/kube";
import { KubeClient } from "@loraforge/test-k8s";
import { z } from "zod";
import { buildJob } from "../../src/builders/job.ts";
import { configFromEnv } from "../../src/config.ts";
import { type Env, eventually, setup, teardown } from "../support/cluster.ts";
import { lft } from "../support/fixtures.ts";
import { docs, ensureHelm, helmRun, helmTemplate, type Obj, pathOf } from "../support/helm.ts";
import { installCrds, serviceMonitorCrd } from "../support/upstreamCrds.ts";

const chart = join(import.meta.dirname, "..", "..", "..", "charts", "loraforge");
const TRAINER_IMAGE = "ghcr.io/loraforge/trainer:policy";
const PodTemplate = z.object({ spec: z.object({ template: z.object({ spec: z.unknown() }) }) });

describe("chart guard rails against a real API server", () => {
  let env: Env;
  let helm: string;
  let kubeVersion: string;
  const applied: Obj[] = [];
  let otherNs: string;

  const render = (release: string, sets: Record<string, string>) =>
    docs(
      helmTemplate(helm, release, chart, env.ns, { "trainer.image": TRAINER_IMAGE, ...sets }, [
        "--kube-version",
        kubeVersion,
      ]),
    );

  async function apply(objs: Obj[]) {
    for (const o of objs) {
      const r = await env.client.request(
        "PATCH",
        `${pathOf(o)}?fieldManager=helm-test&force=true&fieldValidation=Strict`,
        o,
        "application/apply-patch+yaml",
      );
      assert.ok(
        r.status === 200 || r.status === 201,
        `${o.kind}/${o.metadata.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 400)}`,
      );
      applied.push(o);
    }
  }

  /** A client holding only the token of the chart's ServiceAccount `sa`. */
  async function as(sa: string): Promise<KubeClient> {
    const token = z.object({ status: z.object({ token: z.string() }) }).parse(
      await env.client.create(`/api/v1/namespaces/${env.ns}/serviceaccounts/${sa}/token`, {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {},
      }),
    ).status.token;
    return KubeClient.connect({ server: env.cluster.server, caPem: env.cluster.caPem, token });
  }

  /** A suspended Job as the operator would write it, with `pod` merged into its pod spec. */
  const job = (name: string, pod: Record<string, unknown> = {}) => ({
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name },
    spec: {
      suspend: true,
      template: {
        spec: {
          restartPolicy: "Never",
          serviceAccountName: `${name}-trainer`,
          containers: [{ name: "trainer", image: TRAINER_IMAGE }],
          ...pod,
        },
      },
    },
  });

  before(async () => {
    env = await setup("chartpol");
    helm = ensureHelm();
    kubeVersion = env.cluster.version;
    otherNs = `${env.ns}-w`;
    await env.client.create("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: otherNs },
    });
  });
  after(async () => {
    if (env) {
      for (const o of applied)
        if (!o.metadata.namespace) await env.client.request("DELETE", pathOf(o));
      await env.client.request("DELETE", `/api/v1/namespaces/${otherNs}`);
    }
    await teardown(env);
  });

  test("values.schema.json: a wrong type, a misspelt key or a bad policy fails, naming the key", () => {
    const refused = (sets: string[], key: RegExp) => {
      const r = helmRun(helm, ["template", "x", chart, "--kube-version", kubeVersion, ...sets]);
      assert.notEqual(r.status, 0, `helm accepted ${sets.join(" ")}`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      assert.match(r.stderr, key, r.stderr);
    };
    refused(["--set", "replicaCount=abc"], /replicaCount/);
    refused(["--set", "trainer.imagee=x"], /imagee/);
    refused(["--set", "metricsPort=70000"], /metricsPort/);
    refused(["--set", "policy.allowedTolerationKeys=nvidia.com/gpu"], /allowedTolerationKeys/);
    refused(["--set", "trainer.defaultMemory=lots"], /defaultMemory/);
    refused(["--set", "resources.limits=null"], /resources/);
    // The operator's own pod: security contexts, tolerations and scrape peers are closed too.
    refused(
      ["--set", "securityContext.readOnlyRootFilesytem=false"],
      /at '\/securityContext': additional properties 'readOnlyRootFilesytem'/,
    );
    refused(["--set", "podSecurityContext.runAsUser=abc"], /\/podSecurityContext\/runAsUser/);
    refused(["--set", "tolerations[0].kee=x"], /\/tolerations\/0': additional properties 'kee'/);
    refused(
      ["--set-json", 'networkPolicy.metricsFrom=[{"namespaceSelecter":{}}]'],
      /\/networkPolicy\/metricsFrom\/0': additional properties 'namespaceSelecter'/,
    );
  });

  test("leader-election timings that break the operator's invariant are refused at render time, naming the values", () => {
    const refused = (sets: string[], message: RegExp) => {
      const r = helmRun(helm, ["template", "x", chart, "--kube-version", kubeVersion, ...sets]);
      assert.notEqual(r.status, 0, `helm accepted ${sets.join(" ")}`);
      assert.match(r.stderr, message, r.stderr);
    };
    refused(
      ["--set", "leaderElection.leaseDurationSeconds=3"],
      /leaderElection.renewDeadlineSeconds \(10\) must be less than leaderElection.leaseDurationSeconds \(3\)/,
    );
    refused(
      ["--set", "leaderElection.retryPeriodSeconds=10"],
      /leaderElection.retryPeriodSeconds \(10\) must be less than leaderElection.renewDeadlineSeconds \(10\)/,
    );
    refused(
      ["--set-json", "leaderElection.requestTimeoutSeconds=12.5"],
      /leaderElection.requestTimeoutSeconds \(12.5\) must be less than leaderElection.renewDeadlineSeconds \(10\)/,
    );
    // Within the invariant (fractions through --set-json), or without leader election: rendered.
    for (const sets of [
      [
        "--set-json",
        'leaderElection={"leaseDurationSeconds":3,"renewDeadlineSeconds":2.5,"retryPeriodSeconds":0.5,"requestTimeoutSeconds":1}',
      ],
      ["--set", "leaderElection.enabled=false", "--set", "leaderElection.leaseDurationSeconds=3"],
    ]) {
      const r = helmRun(helm, ["template", "x", chart, "--kube-version", kubeVersion, ...sets]);
      assert.equal(r.status, 0, r.stderr);
    }
  });

  /** The trainer settings the operator reads from the Deployment the chart renders with `sets`. */
  const settingsOf = (sets: Record<string, string>) => {
    const dep = render("sc", sets).find((o) => o.kind === "Deployment") as Obj & {
      spec: {
        template: {
          spec: { containers: { env: { name: string; value?: string }[] }[] };
        };
      };
    };
    const env = Object.fromEntries(
      (dep.spec.template.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value]),
    );
    return configFromEnv(env, "chart-test").trainer;
  };

  test("trainer.imagePullSecrets reach the trainer pods (chart value → operator settings → Job)", () => {
    assert.deepEqual(settingsOf({}).imagePullSecrets, []);
    const trainer = settingsOf({ "trainer.imagePullSecrets": "{ghcr-pull,quay-pull}" });
    assert.deepEqual(trainer.imagePullSecrets, ["ghcr-pull", "quay-pull"]);
    const job = buildJob(
      { lft: lft({ name: "pull" }), uid: "uid-pull", namespace: env.ns },
      {
        trainerImage: TRAINER_IMAGE,
        pullPolicy: "IfNotPresent",
        backoffLimit: 3,
        gpuProduct: undefined,
        pod: trainer,
      },
    );
    const pod = z
      .object({ imagePullSecrets: z.array(z.object({ name: z.string() })) })
      .parse(PodTemplate.parse(job).spec.template.spec);
    assert.deepEqual(pod.imagePullSecrets, [{ name: "ghcr-pull" }, { name: "quay-pull" }]);
  });

  test("the trainer's security contexts: chart defaults as before, overrides reach the operator's settings, Pod Security 'restricted' holds the floor", async () => {
    const defaults = settingsOf({});
    assert.deepEqual(defaults.podSecurityContext, {
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: "RuntimeDefault" },
    });
    assert.deepEqual(defaults.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    const custom = settingsOf({
      "trainer.podSecurityContext.runAsUser": "2000",
      "trainer.podSecurityContext.fsGroup": "null",
      "trainer.securityContext.readOnlyRootFilesystem": "false",
      "trainer.securityContext.capabilities.add": "{IPC_LOCK}",
    });
    assert.deepEqual(custom.podSecurityContext, {
      runAsNonRoot: true,
      runAsUser: 2000,
      runAsGroup: 1000,
      seccompProfile: { type: "RuntimeDefault" },
    });
    assert.deepEqual(custom.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: false,
      capabilities: { drop: ["ALL"], add: ["IPC_LOCK"] },
    });
    // The admission policy leaves security contexts to the admin; a namespace labelled for
    // Pod Security 'restricted' is the floor: the defaults' trainer pod passes it, a pod with
    // an added capability does not (what the Job controller's pod create would get).
    const restricted = `${env.ns}-r`;
    await env.client.create("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name: restricted,
        labels: { "pod-security.kubernetes.io/enforce": "restricted" },
      },
    });
    try {
      const podCreate = (trainer: typeof defaults) => {
        const job = buildJob(
          { lft: lft({ name: "psa" }), uid: "uid-psa", namespace: restricted },
          {
            trainerImage: TRAINER_IMAGE,
            pullPolicy: "IfNotPresent",
            backoffLimit: 3,
            gpuProduct: undefined,
            pod: trainer,
          },
        );
        return env.client.request("POST", `/api/v1/namespaces/${restricted}/pods?dryRun=All`, {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "psa" },
          spec: PodTemplate.parse(job).spec.template.spec,
        });
      };
      const ok = await podCreate(defaults);
      assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 400));
      const loosened = settingsOf({ "trainer.securityContext.capabilities.add": "{SYS_ADMIN}" });
      const refused = await podCreate(loosened);
      assert.equal(refused.status, 403, JSON.stringify(refused.body).slice(0, 400));
      assert.match(
        z.object({ message: z.string() }).parse(refused.body).message,
        /violates PodSecurity "restricted.*SYS_ADMIN/,
      );
    } finally {
      await env.client.request("DELETE", `/api/v1/namespaces/${restricted}`);
    }
    // A misspelt field is refused by the schema, naming it.
    const r = helmRun(helm, [
      "template",
      "x",
      chart,
      "--kube-version",
      kubeVersion,
      "--set",
      "trainer.securityContext.readOnlyRootFilesytem=false",
    ]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /trainer\/securityContext.*readOnlyRootFilesytem/);
  });

  test("helm lint --strict is clean, with every optional object on and off", () => {
    for (const sets of [
      [],
      [
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "podDisruptionBudget.enabled=true",
        "--set",
        "kueue.enabled=true",
        "--set",
        `watchNamespace=${otherNs}`,
        "--set",
        "trainer.imagePullSecrets={ghcr-pull}",
      ],
    ]) {
      const r = helmRun(helm, ["lint", "--strict", chart, "--kube-version", kubeVersion, ...sets]);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  test("NOTES.txt says what to run next, the policy in force and the CRD upgrade step", () => {
    const r = helmRun(helm, [
      "install",
      "notes",
      chart,
      "--dry-run=client",
      "--namespace",
      env.ns,
      "--kubeconfig",
      env.cluster.kubeconfigPath,
      "--set",
      `watchNamespace=${otherNs}`,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const notes = r.stdout.slice(r.stdout.indexOf("NOTES:"));
    assert.match(
      notes,
      new RegExp(`kubectl -n ${env.ns} rollout status deployment/notes-loraforge`),
    );
    assert.match(notes, new RegExp(`kubectl get lft -n ${otherNs} -w`));
    assert.match(notes, /fails with reason PolicyViolation/);
    assert.match(notes, /Helm never upgrades the CRD.*\n.*\n\n\s+kubectl apply --server-side/);
  });

  test("prometheus.io/port follows metricsPort; ServiceMonitor and PDB render when enabled and apply (the ServiceMonitor to prometheus-operator's CRD)", async () => {
    const objs = render(`pm-${randomBytes(2).toString("hex")}`, {
      metricsPort: "9300",
      "serviceMonitor.enabled": "true",
      "podDisruptionBudget.enabled": "true",
      "podAnnotations.team": "ml",
    });
    const dep = objs.find((o) => o.kind === "Deployment") as Obj & {
      spec: {
        template: {
          metadata: { annotations: Record<string, string>; labels: Record<string, string> };
          spec: { containers: { ports: { name: string; containerPort: number }[] }[] };
        };
      };
    };
    assert.deepEqual(dep.spec.template.metadata.annotations, {
      "prometheus.io/path": "/metrics",
      "prometheus.io/port": "9300",
      "prometheus.io/scrape": "true",
      team: "ml",
    });
    const sm = objs.find((o) => o.kind === "ServiceMonitor") as Obj & {
      spec: {
        selector: { matchLabels: Record<string, string> };
        endpoints: { port: string; path: string }[];
      };
    };
    // The ServiceMonitor finds the metrics Service by its labels and scrapes its named port,
    // which leads to metricsPort on the pod.
    const svc = objs.find((o) => o.kind === "Service") as Obj & {
      metadata: { labels: Record<string, string> };
      spec: {
        selector: Record<string, string>;
        ports: { name: string; port: number; targetPort: string }[];
      };
    };
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels))
      assert.equal(svc.metadata.labels[k], v, `the Service has the ServiceMonitor's label ${k}`);
    const scraped = svc.spec.ports.find((p) => p.name === sm.spec.endpoints[0]?.port);
    assert.deepEqual([scraped?.port, scraped?.targetPort], [9300, "http"]);
    assert.equal(sm.spec.endpoints[0]?.path, "/metrics");
    const podLabels = dep.spec.template.metadata.labels;
    const container = dep.spec.template.spec.containers[0];
    assert.equal(container?.ports.find((p) => p.name === "http")?.containerPort, 9300);
    for (const [k, v] of Object.entries(svc.spec.selector))
      assert.equal(podLabels[k], v, `the Service selects the operator pod (${k})`);
    const pdb = objs.find((o) => o.kind === "PodDisruptionBudget") as Obj & {
      spec: { selector: { matchLabels: Record<string, string> } };
    };
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels))
      assert.equal(podLabels[k], v, `the PodDisruptionBudget selects the operator pod (${k})`);
    // Applied for real, the ServiceMonitor to prometheus-operator's own CRD (strict field
    // validation: a field its schema lacks or a malformed interval is an error).
    await installCrds(env.client, [serviceMonitorCrd()]);
    await apply(
      objs.filter((o) =>
        ["PodDisruptionBudget", "NetworkPolicy", "Service", "ServiceMonitor"].includes(o.kind),
      ),
    );
    // The CRD's schema really checks: a field it does not have is refused (a create with
    // strict field validation; server-side apply reports the same as a 500).
    const bad = structuredClone(sm);
    bad.metadata.name = `${sm.metadata.name}-bad`;
    Object.assign(bad.spec.endpoints[0] ?? {}, { scrapeEvery: "30s" });
    const refused = await env.client.request(
      "POST",
      `${pathOf(bad).replace(/\/[^/]+$/, "")}?fieldValidation=Strict`,
      bad,
    );
    assert.equal(refused.status, 400, JSON.stringify(refused.body).slice(0, 300));
    assert.match(
      z.object({ message: z.string() }).parse(refused.body).message,
      /unknown field "spec\.endpoints\[0\]\.scrapeEvery"/,
    );
    const np = objs.find((o) => o.kind === "NetworkPolicy") as Obj & {
      spec: { ingress: { ports: { port: number }[] }[]; policyTypes: string[] };
    };
    assert.deepEqual(np.spec.policyTypes, ["Ingress", "Egress"]);
    assert.equal(np.spec.ingress[0]?.ports[0]?.port, 9300);
  });

  test("cluster mode: the operator's account may create only proper trainer Jobs (admission policy)", async () => {
    const release = `cm-${randomBytes(2).toString("hex")}`;
    // the trailing slash is trimmed as the operator trims it
    const objs = render(release, {
      "policy.allowedImageRegistries": "{registry.example.com/models/}",
    });
    assert.ok(objs.some((o) => o.kind === "ClusterRole"));
    await apply(objs.filter((o) => o.kind !== "CustomResourceDefinition"));
    const op = await as(`${release}-loraforge`);
    const create = (body: unknown) =>
      op.request("POST", `/apis/batch/v1/namespaces/${env.ns}/jobs`, body);

    // The policy takes effect once the API server has loaded it.
    const refused = await eventually("the admission policy to refuse", async () => {
      const r = await create(job("other-sa", { serviceAccountName: "default" }));
      return r.status === 403 ? r : undefined;
    });
    assert.match(JSON.stringify(refused.body), /per-run '<run>-trainer' ServiceAccount/);

    const copy = (
      image: string,
      command = ["cp", "-R", "-L", "/models/tiny", "/mnt/sources/model"],
    ) => ({
      initContainers: [{ name: "model-image", image, command }],
    });
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["image", { containers: [{ name: "trainer", image: "busybox" }] }, /trainer image/],
      ["init-registry", copy("docker.io/library/busybox:1"), /only init container/],
      ["init-prefix", copy("registry.example.com/modelsx/tiny:1"), /only init container/],
      [
        "init-command",
        copy("registry.example.com/models/tiny:1", ["sh", "-c", "id", "x", "y"]),
        /only init container/,
      ],
      [
        "init-name",
        {
          initContainers: [
            { ...copy("registry.example.com/models/tiny:1").initContainers[0], name: "setup" },
          ],
        },
        /only init container/,
      ],
      ["hostpath", { volumes: [{ name: "root", hostPath: { path: "/" } }] }, /hostPath volume/],
      ["hostnet", { hostNetwork: true }, /host's network/],
      [
        "tolerate",
        { tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists" }] },
        /allowedTolerationKeys/,
      ],
      ["keyless", { tolerations: [{ operator: "Exists" }] }, /allowedTolerationKeys/],
      ["select", { nodeSelector: { "kubernetes.io/hostname": "n1" } }, /allowedNodeSelector/],
      [
        "affine",
        {
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [
                  {
                    matchExpressions: [
                      { key: "node-role.kubernetes.io/control-plane", operator: "Exists" },
                    ],
                  },
                ],
              },
            },
          },
        },
        /required node affinity term .*allowedNodeSelector/,
      ],
      [
        "by-name",
        {
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [
                  { matchFields: [{ key: "metadata.name", operator: "In", values: ["n1"] }] },
                ],
              },
            },
          },
        },
        /required node affinity term/,
      ],
      [
        "co-locate",
        {
          affinity: {
            podAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [
                {
                  labelSelector: { matchLabels: { app: "victim" } },
                  topologyKey: "kubernetes.io/hostname",
                },
              ],
            },
          },
        },
        /allowPodAffinity/,
      ],
    ];
    for (const [name, pod, message] of cases) {
      const r = await create(job(name, pod));
      assert.equal(r.status, 403, `${name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      assert.match(JSON.stringify(r.body), message, name);
    }
    const ok = await create(
      job("proper", {
        nodeSelector: { "nvidia.com/gpu.product": "Tesla-V100-SXM2-32GB" },
        tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    { key: "nvidia.com/gpu.product", operator: "In", values: ["NVIDIA-A100"] },
                  ],
                },
              ],
            },
          },
        },
      }),
    );
    assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 400));
    // a model image from the allowed registry, copied out as the operator builds it
    const model = await create(job("model", copy("registry.example.com/models/tiny:1")));
    assert.equal(model.status, 201, JSON.stringify(model.body).slice(0, 400));
    // Other accounts are not affected by this release's policy.
    const admin = await env.client.request(
      "POST",
      `/apis/batch/v1/namespaces/${env.ns}/jobs`,
      job("by-admin", { serviceAccountName: "default" }),
    );
    assert.equal(admin.status, 201);
  });

  test("namespaced mode: a Role in watchNamespace only; cluster-wide and elsewhere are forbidden", async () => {
    const release = `ns-${randomBytes(2).toString("hex")}`;
    const objs = render(release, { watchNamespace: otherNs });
    assert.deepEqual(
      objs.filter((o) => o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding"),
      [],
      "no cluster-wide RBAC",
    );
    const role = objs.find((o) => o.kind === "Role" && o.metadata.name === `${release}-loraforge`);
    assert.equal(role?.metadata.namespace, otherNs);
    await apply(objs.filter((o) => o.kind !== "CustomResourceDefinition"));
    const op = await as(`${release}-loraforge`);

    const inWatched = await eventually("the Role to take effect", async () => {
      const r = await op.request(
        "POST",
        `/apis/batch/v1/namespaces/${otherNs}/jobs`,
        job("watched"),
      );
      return r.status === 201 ? r : undefined;
    });
    assert.equal(inWatched.status, 201);
    const checks: [string, string, unknown?][] = [
      ["POST", `/apis/batch/v1/namespaces/${env.ns}/jobs`, job("elsewhere")],
      ["GET", "/apis/batch/v1/jobs"],
      ["POST", `/api/v1/namespaces/${env.ns}/configmaps`, { metadata: { name: "x" } }],
      [
        "POST",
        `/apis/rbac.authorization.k8s.io/v1/namespaces/${env.ns}/roles`,
        { metadata: { name: "x" }, rules: [] },
      ],
      ["GET", paths.lfts()],
    ];
    for (const [method, path, body] of checks) {
      const r = await op.request(method, path, body);
      assert.equal(r.status, 403, `${method} ${path} → ${r.status}`);
    }
    // And in its own namespace it can do what a run needs.
    for (const path of [
      paths.lfts(otherNs),
      `/apis/batch/v1/namespaces/${otherNs}/jobs`,
      `/api/v1/namespaces/${otherNs}/pods`,
    ]) {
      const r = await op.request("GET", path);
      assert.equal(r.status, 200, `GET ${path} → ${r.status}`);
    }
  });
});
