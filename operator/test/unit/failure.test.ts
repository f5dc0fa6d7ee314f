// Why a run failed when its model image's init container did: the pull (ImagePullFailed) or
// the copy (InvalidInput), each naming spec.baseModel.source.image.

import assert from "node:assert/strict";
import { test } from "node:test";
import { imagePullFailure, podFailure } from "../../src/failure.ts";
import { PodSchema } from "../../src/objects.ts";

const pod = (initState: Record<string, unknown>) =>
  PodSchema.parse({
    metadata: { name: "run-train-abc", creationTimestamp: "2026-12-02T09:00:00Z" },
    status: {
      phase: "Pending",
      initContainerStatuses: [{ name: "model-image", state: initState }],
      containerStatuses: [{ name: "trainer", state: { waiting: { reason: "PodInitializing" } } }],
    },
  });

test("a model image that cannot be pulled is ImagePullFailed naming the image source", () => {
  const f = imagePullFailure([
    pod({ waiting: { reason: "ImagePullBackOff", message: 'Back-off pulling image "reg/m:1"' } }),
  ]);
  assert.equal(f?.reason, "ImagePullFailed");
  assert.match(
    f?.message ?? "",
    /model image \(spec\.baseModel\.source\.image\): ImagePullBackOff/,
  );
});

test("a failed copy out of the model image is InvalidInput with the exit code and cp's message", () => {
  const f = podFailure([
    pod({
      terminated: {
        exitCode: 1,
        reason: "Error",
        message: "cp: can't stat '/models/tiny': No such file or directory",
      },
    }),
  ]);
  assert.equal(f?.reason, "InvalidInput");
  assert.equal(f?.exitCode, 1);
  assert.match(
    f?.message ?? "",
    /copying the model out of its image .* exit code 1: .*No such file/,
  );
});

test("exit 6 of the trainer (a source or the output unreachable) keeps the trainer's message", () => {
  const f = podFailure([
    PodSchema.parse({
      metadata: { name: "run-train-xyz" },
      status: {
        containerStatuses: [
          {
            name: "trainer",
            state: {
              terminated: {
                exitCode: 6,
                reason: "Error",
                message: "output s3://runs/x/run-uid: ECONNREFUSED: connect ECONNREFUSED",
              },
            },
          },
        ],
      },
    }),
  ]);
  assert.equal(f?.reason, "TrainerError");
  assert.match(
    f?.message ?? "",
    /exited with code 6 \(a source or the output could not be reached.*\): output s3:\/\/runs\/x\/run-uid: ECONNREFUSED/,
  );
});
