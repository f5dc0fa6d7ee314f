// operator: the controller as one bundle on node. Runs as uid 65532 with a read-only root
// filesystem (the chart sets readOnlyRootFilesystem: true); it writes nothing but logs.

/** @type {import("../build.mjs").ImageDefinition} */
export default {
  name: "operator",
  description: "LoraForge operator: reconciles LoraFineTune resources into Jobs",
  // node needs only libc, libstdc++ and libgcc_s, all in minbase
  base: { suite: "bookworm", packages: {} },
  layers: async (inputs) => [
    {
      name: "operator",
      files: [
        ...(await inputs.node()),
        { path: "/app/operator/operator.mjs", from: await inputs.operatorBundle() },
      ],
    },
  ],
  config: {
    entrypoint: ["/usr/local/bin/node", "--max-old-space-size=192", "/app/operator/operator.mjs"],
    env: { NODE_ENV: "production" },
    labels: {},
  },
};
