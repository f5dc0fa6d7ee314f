export { buildJob, buildSpecConfigMap, ENV as TRAINER_ENV, SPEC_FILE } from "./builders/job.ts";
export { buildRole, buildRoleBinding, buildServiceAccount } from "./builders/rbac.ts";
export { configFromEnv, type OperatorConfig } from "./config.ts";
export { estimateMemory, llamaShape } from "./memoryFit.ts";
export { Operator } from "./operator.ts";
export { validateForCluster } from "./validate.ts";
