import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  type BackendInfo,
  BackendUnavailableError,
  CPU_TRAINER_SETTING_ENV,
  chooseBackend,
  jobBackend,
  probeBackends,
} from "../../src/train/backendChoice.ts";

const cpu: BackendInfo = { name: "cpu", compiled: true, device: true, detail: "2 OpenMP threads" };
const cudaMissing: BackendInfo = {
  name: "cuda",
  compiled: false,
  device: false,
  detail: "not compiled in (build with -DLORAFORGE_CUDA=ON)",
};
const cudaNoGpu: BackendInfo = {
  name: "cuda",
  compiled: true,
  device: false,
  detail: "no GPU visible",
};
const cudaGpu: BackendInfo = {
  name: "cuda",
  compiled: true,
  device: true,
  detail: "1 GPU(s); GPU 0: Tesla V100-SXM2-32GB, compute capability 7.0",
};

describe("backend choice", () => {
  test("a GPU Job on a cpu-only core fails naming why, never trains on the CPU", () => {
    assert.throws(
      () => chooseBackend("cuda", [cpu, cudaMissing], "resources.gpus 1"),
      (e: unknown) =>
        e instanceof BackendUnavailableError &&
        e.exitCode === 2 &&
        /resources\.gpus 1 needs the cuda backend, but this loraforge-core was built without it \(compiled in: cpu\)/.test(
          e.message,
        ),
    );
  });
  test("a GPU Job on a machine without a GPU fails with the core's reason", () => {
    assert.throws(
      () => chooseBackend("cuda", [cpu, cudaNoGpu], "resources.gpus 1"),
      /resources\.gpus 1 needs a GPU, but the cuda backend found none: no GPU visible; it will not train on the CPU instead/,
    );
  });
  test("cuda with a GPU says which device", () => {
    const c = chooseBackend("cuda", [cpu, cudaGpu], "resources.gpus 1");
    assert.equal(c.backend, "cuda");
    assert.match(c.reason, /backend cuda \(resources\.gpus 1\): .*Tesla V100/);
  });
  test("auto takes the GPU when there is one, else the CPU and says why", () => {
    assert.equal(chooseBackend("auto", [cpu, cudaGpu]).backend, "cuda");
    const noGpu = chooseBackend("auto", [cpu, cudaNoGpu]);
    assert.deepEqual(noGpu, { backend: "cpu", reason: "backend cpu (auto: no GPU visible)" });
    const notBuilt = chooseBackend("auto", [cpu, cudaMissing]);
    assert.equal(notBuilt.backend, "cpu");
    assert.match(notBuilt.reason, /cuda is not compiled into this loraforge-core/);
  });
  test("cpu is cpu", () => {
    assert.equal(chooseBackend("cpu", [cpu, cudaGpu], "resources.gpus 0").backend, "cpu");
  });
});

describe("probeBackends", () => {
  const dir = mkdtempSync(join(tmpdir(), "lf-backends-"));
  const fake = (name: string, body: string) => {
    const p = join(dir, name);
    writeFileSync(p, `#!/bin/sh\n${body}\n`);
    chmodSync(p, 0o755);
    return p;
  };
  test("parses the core's reply", () => {
    const p = fake(
      "ok",
      `echo '${JSON.stringify({ version: "0.1.0", backends: [cpu, cudaNoGpu] })}'`,
    );
    assert.deepEqual(probeBackends(p), [cpu, cudaNoGpu]);
  });
  test("a core without the verb: the error names the binary and the exit", () => {
    const p = fake(
      "old",
      "echo \"loraforge-core: error (usage): unknown verb 'backends'\" >&2; exit 2",
    );
    assert.throws(() => probeBackends(p), /old backends exited 2: .*unknown verb 'backends'/);
  });
  test("a malformed reply names the field", () => {
    const p = fake("bad", `echo '{"version":"0.1.0","backends":[{"name":"cpu"}]}'`);
    assert.throws(() => probeBackends(p), /bad backends: unexpected reply: backends\.0\.compiled/);
  });
});

describe("the trainer Job's backend (jobBackend)", () => {
  test("a GPU Job without the test setting needs cuda, as before: a cpu-only core fails it", () => {
    assert.throws(
      () => jobBackend(1, [cpu, cudaMissing], undefined),
      (e: unknown) =>
        e instanceof BackendUnavailableError &&
        /resources\.gpus 1 needs the cuda backend/.test(e.message),
    );
    assert.equal(jobBackend(1, [cpu, cudaGpu], undefined).backend, "cuda");
    assert.equal(jobBackend(0, [cpu, cudaGpu], undefined).backend, "cpu");
  });

  test("under the test-only setting a GPU Job trains on the CPU, and the reason names the setting", () => {
    const choice = jobBackend(1, [cpu, cudaMissing], "testing.cpuTrainerForGpuRuns");
    assert.equal(choice.backend, "cpu");
    assert.match(
      choice.reason,
      /resources\.gpus 1: training on CPU under the cluster's test-only setting testing\.cpuTrainerForGpuRuns/,
    );
    // the setting switches GPU runs only; even with a GPU present it is the CPU (what the test asks)
    assert.equal(jobBackend(2, [cpu, cudaGpu], "testing.cpuTrainerForGpuRuns").backend, "cpu");
    assert.match(
      jobBackend(0, [cpu], "testing.cpuTrainerForGpuRuns").reason,
      /^backend cpu \(resources\.gpus 0\)$/,
    );
  });

  test("a value that is not a setting name is refused, naming the variable", () => {
    assert.throws(
      () => jobBackend(1, [cpu], "yes; rm -rf /"),
      new RegExp(`${CPU_TRAINER_SETTING_ENV}: "yes; rm -rf /" is not a setting name`),
    );
  });
});
