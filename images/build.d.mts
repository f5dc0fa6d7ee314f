// Types of images/build.mjs for TypeScript callers (test/k8s).
export interface BuiltImage {
  name: "operator" | "trainer-cpu" | "trainer-cuda" | "model-stories260k";
  /** ghcr.io/loraforge/<name>:<12 hex of the inputs hash>; the name the tar imports under */
  ref: string;
  /** docker-archive for `ctr -n k8s.io images import` */
  tar: string;
  /** OCI manifest digest */
  digest: string;
  configDigest: string;
  inputs: string;
  /** compressed size of all layers, bytes */
  size: number;
  layers: { name: string; digest: string; size: number }[];
  packages: string[];
  cached?: boolean;
}
export const IMAGE_NAMES: BuiltImage["name"][];
export const EXAMPLE_IMAGE_NAMES: BuiltImage["name"][];
export const CACHE_DIR: string;
export const EPOCH: number;
export const USER_ID: number;
export const REGISTRY: string;
export function buildImage(name: BuiltImage["name"]): Promise<BuiltImage>;
export function ensureImages(names?: BuiltImage["name"][]): Promise<BuiltImage[]>;
