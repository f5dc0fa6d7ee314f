/**
 * What LoraForge needs to know about a GPU product, keyed by the value of the
 * `nvidia.com/gpu.product` node label that NVIDIA's GPU feature discovery writes
 * (e.g. "Tesla-V100-SXM2-32GB", "NVIDIA-A100-SXM4-80GB").
 *
 * One table feeds three places: the zod check, the CEL rule in the CRD and the
 * operator's memory-fit estimate.
 */

export interface GpuFamily {
  /** Family token as it appears between dashes in the product label. */
  token: string;
  /** CUDA compute capability (major.minor). bf16 needs >= 8.0. */
  computeCapability: number;
  /** Memory of the most common variant, used when the label carries no "NNGB". */
  defaultMemoryGiB: number;
}

export const GPU_FAMILIES: readonly GpuFamily[] = [
  { token: "K80", computeCapability: 3.7, defaultMemoryGiB: 12 },
  { token: "M60", computeCapability: 5.2, defaultMemoryGiB: 8 },
  { token: "P4", computeCapability: 6.1, defaultMemoryGiB: 8 },
  { token: "P40", computeCapability: 6.1, defaultMemoryGiB: 24 },
  { token: "P100", computeCapability: 6.0, defaultMemoryGiB: 16 },
  { token: "V100", computeCapability: 7.0, defaultMemoryGiB: 16 },
  { token: "V100S", computeCapability: 7.0, defaultMemoryGiB: 32 },
  { token: "T4", computeCapability: 7.5, defaultMemoryGiB: 16 },
  { token: "A10", computeCapability: 8.6, defaultMemoryGiB: 24 },
  { token: "A10G", computeCapability: 8.6, defaultMemoryGiB: 24 },
  { token: "A30", computeCapability: 8.0, defaultMemoryGiB: 24 },
  { token: "A40", computeCapability: 8.6, defaultMemoryGiB: 48 },
  { token: "A100", computeCapability: 8.0, defaultMemoryGiB: 40 },
  { token: "L4", computeCapability: 8.9, defaultMemoryGiB: 24 },
  { token: "L40", computeCapability: 8.9, defaultMemoryGiB: 48 },
  { token: "L40S", computeCapability: 8.9, defaultMemoryGiB: 48 },
  { token: "H100", computeCapability: 9.0, defaultMemoryGiB: 80 },
  { token: "H200", computeCapability: 9.0, defaultMemoryGiB: 141 },
];

/** Pattern (RE2 and ECMAScript compatible, case-insensitive) of products without bf16. */
export const NO_BF16_PRODUCT_PATTERN = `(^|-)(${GPU_FAMILIES.filter((g) => g.computeCapability < 8)
  .map((g) => g.token)
  .join("|")})(-|$)`;

const noBf16 = new RegExp(NO_BF16_PRODUCT_PATTERN, "i");

export function productLacksBf16(product: string): boolean {
  return noBf16.test(product);
}

export interface GpuInfo {
  family: GpuFamily;
  memoryGiB: number;
  bf16: boolean;
}

/** Looks a product label up; undefined when the family is unknown. */
export function gpuInfo(product: string): GpuInfo | undefined {
  const parts = product.toUpperCase().split(/[-_ ]/);
  // Prefer the longest token so that "V100S" wins over "V100" and "L40S" over "L40".
  const family = [...GPU_FAMILIES]
    .sort((a, b) => b.token.length - a.token.length)
    .find((g) => parts.includes(g.token));
  if (!family) return undefined;
  const gb = /(\d+)\s*GB/i.exec(product);
  const memoryGiB = gb?.[1] ? Number(gb[1]) : family.defaultMemoryGiB;
  return { family, memoryGiB, bf16: family.computeCapability >= 8 };
}
