// The admin's allow-list for where sources may point. Admission (CEL/zod in @loraforge/crds)
// already refuses the addresses that are never a source; here a literal address in any
// other non-public range (RFC 1918, CGNAT, ULA, documentation, benchmarking, ...) is refused
// unless a network of `policy.allowedSourceNetworks` holds it. Host names are not resolved:
// what a name resolves to when the trainer connects is the trainer's network policy's
// business, not something the operator can know now.

import {
  type Cidr,
  cidrContains,
  type LoraFineTune,
  literalHostOf,
  nonPublicRange,
} from "@loraforge/crds";

/** The URI-valued fields of a spec, with their paths. */
export function sourceUris(lft: LoraFineTune): { field: string; uri: string }[] {
  const { baseModel, dataset, output } = lft.spec;
  const out: { field: string; uri: string }[] = [];
  if (baseModel.source.uri)
    out.push({ field: "spec.baseModel.source.uri", uri: baseModel.source.uri });
  if (dataset.source.uri) out.push({ field: "spec.dataset.source.uri", uri: dataset.source.uri });
  if (dataset.source.git)
    out.push({ field: "spec.dataset.source.git.repo", uri: dataset.source.git.repo });
  if (output.uri) out.push({ field: "spec.output.uri", uri: output.uri });
  return out;
}

/** Why the spec may not reach its sources, or undefined when every one is allowed. */
export function sourceNetworkProblem(
  lft: LoraFineTune,
  allowed: readonly Cidr[],
): string | undefined {
  for (const { field, uri } of sourceUris(lft)) {
    const literal = literalHostOf(uri);
    if (!literal) continue;
    const range = nonPublicRange(literal.ip);
    if (!range) continue;
    if (allowed.some((net) => cidrContains(net, literal.ip))) continue;
    const policy =
      allowed.length === 0
        ? "the operator allows no non-public network"
        : `the operator allows only ${allowed.map((n) => n.text).join(", ")}`;
    return `${field} ${uri}: ${literal.host} is in ${range.cidr} (${range.what}) and ${policy}; an admin can allow the network with the chart value policy.allowedSourceNetworks`;
  }
  return undefined;
}
