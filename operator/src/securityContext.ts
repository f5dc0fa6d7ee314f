// The security contexts of every trainer pod: the admin's (chart values
// trainer.podSecurityContext / trainer.securityContext, passed as JSON), else these defaults.
// Parsed strictly, so a misspelt field names itself instead of being dropped by the API
// server. Fields and types are Kubernetes' PodSecurityContext and SecurityContext (core/v1).

import { z } from "zod";

const int64 = z.number().int();
const seccompProfile = z.strictObject({
  type: z.enum(["RuntimeDefault", "Unconfined", "Localhost"]),
  localhostProfile: z.string().optional(),
});
const appArmorProfile = seccompProfile;
const seLinuxOptions = z.strictObject({
  level: z.string().optional(),
  role: z.string().optional(),
  type: z.string().optional(),
  user: z.string().optional(),
});
const windowsOptions = z.strictObject({
  gmsaCredentialSpec: z.string().optional(),
  gmsaCredentialSpecName: z.string().optional(),
  hostProcess: z.boolean().optional(),
  runAsUserName: z.string().optional(),
});
const common = {
  runAsUser: int64.min(0).optional(),
  runAsGroup: int64.min(0).optional(),
  runAsNonRoot: z.boolean().optional(),
  seccompProfile: seccompProfile.optional(),
  appArmorProfile: appArmorProfile.optional(),
  seLinuxOptions: seLinuxOptions.optional(),
  windowsOptions: windowsOptions.optional(),
};

export const PodSecurityContextSchema = z.strictObject({
  ...common,
  fsGroup: int64.min(0).optional(),
  fsGroupChangePolicy: z.enum(["OnRootMismatch", "Always"]).optional(),
  supplementalGroups: z.array(int64.min(0)).optional(),
  supplementalGroupsPolicy: z.enum(["Merge", "Strict"]).optional(),
  seLinuxChangePolicy: z.enum(["MountOption", "Recursive"]).optional(),
  sysctls: z.array(z.strictObject({ name: z.string().min(1), value: z.string() })).optional(),
});
export type PodSecurityContext = z.infer<typeof PodSecurityContextSchema>;

export const ContainerSecurityContextSchema = z.strictObject({
  ...common,
  allowPrivilegeEscalation: z.boolean().optional(),
  privileged: z.boolean().optional(),
  readOnlyRootFilesystem: z.boolean().optional(),
  procMount: z.enum(["Default", "Unmasked"]).optional(),
  capabilities: z
    .strictObject({
      add: z.array(z.string().min(1)).optional(),
      drop: z.array(z.string().min(1)).optional(),
    })
    .optional(),
});
export type ContainerSecurityContext = z.infer<typeof ContainerSecurityContextSchema>;

/**
 * Non-root uid/gid 1000 (the trainer images' user) with fsGroup 1000, so the output volume
 * is writable; the chart's values.yaml has the same defaults.
 */
export const DEFAULT_TRAINER_POD_SECURITY_CONTEXT: PodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: 1000,
  runAsGroup: 1000,
  fsGroup: 1000,
  seccompProfile: { type: "RuntimeDefault" },
};

/** Read-only root (the trainer writes to /tmp and its volumes only), no privilege, no capabilities. */
export const DEFAULT_TRAINER_SECURITY_CONTEXT: ContainerSecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
};
