// Where may a run's https:// sources and output point? Two layers:
//
// 1. At admission (CEL in the CRD, and the same zod checks in the cli and the Action), from
//    the URL text alone: one unambiguous host syntax, and never an address that is never a
//    legitimate source — loopback, unspecified, link-local (the 169.254.169.254 metadata
//    endpoint), multicast, reserved, IPv4 inside IPv6 (mapped, compatible, NAT64) — nor
//    localhost or a cloud-metadata name. The rules are regular expressions, so that CEL (RE2)
//    and zod (JavaScript) read the same pattern, and CRDs still apply on Kubernetes 1.29,
//    which has no CEL IP library.
// 2. In the operator, with the admin's allow-list (`policy.allowedSourceNetworks`): a literal
//    address in any non-public range (RFC 1918, CGNAT, ULA, documentation, benchmarking...)
//    is refused unless an allowed network holds it. `nonPublicRange` and `parseCidr` below.
//
// Why the host syntax is strict: URL parsers disagree. WHATWG (Node's fetch, browsers) reads
// `https://2130706433/`, `https://0x7f.1/`, `https://127.1/` and `https://%31%32%37.0.0.1/` as
// 127.0.0.1, and `https://169.254.169.254\@example.com/` as 169.254.169.254; Go's and
// Python's parsers read some of them differently. The only hosts accepted are a DNS name
// whose last label starts with a letter (so no parser takes it for a number), a dotted quad
// in canonical decimal, or a bracketed IPv6 address in hex; no user info, no '%', no '\',
// no spaces or control characters anywhere.

import type { Rule } from "./rules.ts";

const label = "[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?";
const topLabel = "[A-Za-z]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?";
const dnsName = `(${label}[.])*${topLabel}[.]?`;
const octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const ipv4 = `(${octet}[.]){3}${octet}`;
const h = "[0-9A-Fa-f]{1,4}";
const ipv6 = [
  `(${h}:){7}${h}`,
  `(${h}:){1,7}:`,
  `(${h}:){1,6}:${h}`,
  `(${h}:){1,5}(:${h}){1,2}`,
  `(${h}:){1,4}(:${h}){1,3}`,
  `(${h}:){1,3}(:${h}){1,4}`,
  `(${h}:){1,2}(:${h}){1,5}`,
  `${h}:(:${h}){1,6}`,
  `:((:${h}){1,7}|:)`,
].join("|");
/** End of the host: a port, the path, the query, the fragment, or the end. */
const hostEnd = "([:/?#]|$)";

/** https://host[:port][/path][?query][#fragment], with the host syntax above. */
export const HTTPS_URL_PATTERN = `^https://(${dnsName}|${ipv4}|\\[(${ipv6})\\])(:[0-9]{1,5})?([/?#][^\\x00-\\x20\\x7f\\\\]*)?$`;

/**
 * Literal addresses that are never a source, in the canonical forms the pattern above
 * admits: IPv4 0/8, 127/8, 169.254/16, 224/4, 240/4; IPv6 whose first group is 0 (::, ::1,
 * IPv4-mapped and -compatible), fe80::/10, ff00::/8, and NAT64 64:ff9b::/32.
 */
export const NEVER_SOURCE_ADDRESS_PATTERN = `^https://((0|127|169[.]254|22[4-9]|2[3-5][0-9])[.][0-9.]*${hostEnd}|\\[(0{1,4}:|::|[fF][eE][89abAB][0-9a-fA-F]:|[fF][fF][0-9a-fA-F]{2}:|0{0,2}64:[fF][fF]9[bB]:))`;

/** localhost (RFC 6761, with its sub-names) and the cloud metadata names. */
export const NEVER_SOURCE_NAME_PATTERN = `^https://(([^/?#:]*[.])?[lL][oO][cC][aA][lL][hH][oO][sS][tT]|[lL][oO][cC][aA][lL][hH][oO][sS][tT][.][lL][oO][cC][aA][lL][dD][oO][mM][aA][iI][nN]|[iI][pP]6-([lL][oO][cC][aA][lL][hH][oO][sS][tT]|[lL][oO][oO][pP][bB][aA][cC][kK])|[mM][eE][tT][aA][dD][aA][tT][aA]([.][gG][oO][oO][gG][lL][eE][.][iI][nN][tT][eE][rR][nN][aA][lL])?|[iI][nN][sS][tT][aA][nN][cC][eE]-[dD][aA][tT][aA])[.]?${hostEnd}`;

const httpsUrl = new RegExp(HTTPS_URL_PATTERN);
const neverAddress = new RegExp(NEVER_SOURCE_ADDRESS_PATTERN);
const neverName = new RegExp(NEVER_SOURCE_NAME_PATTERN);

/** The admission rules for a URI field: they look at https:// URLs; other schemes pass. */
export function httpsHostRules(): Rule<string>[] {
  const guard = "!self.startsWith('https://') || ";
  const applies = (s: string) => s.startsWith("https://");
  return [
    {
      cel: `${guard}self.matches('${HTTPS_URL_PATTERN.replaceAll("\\", "\\\\")}')`,
      message:
        "must be https://host[:port][/path]: the host a DNS name (its last label starting with a letter), four decimal octets or a bracketed hex IPv6 address; no user info, '%', '\\', spaces or control characters",
      holds: (s) => !applies(s) || httpsUrl.test(s),
    },
    {
      cel: `${guard}!self.matches('${NEVER_SOURCE_ADDRESS_PATTERN.replaceAll("\\", "\\\\")}')`,
      message:
        "must not point at a loopback, unspecified, link-local (such as the 169.254.169.254 metadata endpoint), multicast or reserved address, nor at IPv4 inside IPv6 (mapped, compatible or NAT64)",
      holds: (s) => !applies(s) || !neverAddress.test(s),
    },
    {
      cel: `${guard}!self.matches('${NEVER_SOURCE_NAME_PATTERN.replaceAll("\\", "\\\\")}')`,
      message: "must not point at localhost or a cloud metadata host",
      holds: (s) => !applies(s) || !neverName.test(s),
    },
  ];
}

// ---------------------------------------------------------------------------
// Addresses and networks (the operator's allow-list)
// ---------------------------------------------------------------------------

/** An IP address as bytes: 4 for IPv4, 16 for IPv6. */
export type IpBytes = Uint8Array;

export interface Cidr {
  text: string;
  bytes: IpBytes;
  bits: number;
}

function parseIpv4(s: string): IpBytes | undefined {
  if (!new RegExp(`^${ipv4}$`).test(s)) return undefined;
  return Uint8Array.from(s.split(".").map(Number));
}

function parseIpv6(s: string): IpBytes | undefined {
  if (!new RegExp(`^(${ipv6})$`).test(s)) return undefined;
  const [head = "", tail] = s.split("::");
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const zeros = 8 - left.length - right.length;
  if (tail === undefined ? left.length !== 8 : zeros < 1) return undefined;
  const all = [...left, ...Array<string>(tail === undefined ? 0 : zeros).fill("0"), ...right];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/** A literal address in the admitted text forms (dotted-quad IPv4, hex IPv6), else undefined. */
export function parseIp(s: string): IpBytes | undefined {
  return parseIpv4(s) ?? parseIpv6(s);
}

/** `10.0.0.0/8`, `fd00::/8`; a bare address is a /32 or /128. Throws on anything else. */
export function parseCidr(text: string): Cidr {
  const [addr = "", len, extra] = text.trim().split("/");
  const bytes = parseIp(addr);
  if (!bytes || extra !== undefined)
    throw new Error(`${JSON.stringify(text)} is not a CIDR (e.g. 198.18.0.0/15 or fd00::/8)`);
  const max = bytes.length * 8;
  if (len !== undefined && !/^[0-9]{1,3}$/.test(len))
    throw new Error(`${JSON.stringify(text)}: the prefix length must be a number 0..${max}`);
  const bits = len === undefined ? max : Number(len);
  if (bits > max)
    throw new Error(`${JSON.stringify(text)}: the prefix length must be at most ${max}`);
  return { text: text.trim(), bytes, bits };
}

export function cidrContains(net: Cidr, ip: IpBytes): boolean {
  if (net.bytes.length !== ip.length) return false;
  for (let bit = 0; bit < net.bits; bit++) {
    const mask = 0x80 >> (bit % 8);
    const i = Math.floor(bit / 8);
    if (((net.bytes[i] ?? 0) & mask) !== ((ip[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** Ranges that are not the public internet (IANA special-purpose registries). */
const NON_PUBLIC: readonly (readonly [string, string])[] = [
  ["0.0.0.0/8", "this network"],
  ["10.0.0.0/8", "private, RFC 1918"],
  ["100.64.0.0/10", "shared address space (carrier-grade NAT)"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local: cloud metadata endpoints"],
  ["172.16.0.0/12", "private, RFC 1918"],
  ["192.0.0.0/24", "IETF protocol assignments"],
  ["192.0.2.0/24", "documentation"],
  ["192.88.99.0/24", "6to4 relay anycast"],
  ["192.168.0.0/16", "private, RFC 1918"],
  ["198.18.0.0/15", "benchmarking"],
  ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"],
  ["::/8", "reserved: unspecified, loopback, IPv4-mapped and -compatible"],
  ["64:ff9b::/96", "NAT64"],
  ["64:ff9b:1::/48", "local NAT64"],
  ["100::/64", "discard-only"],
  ["2001:db8::/32", "documentation"],
  ["fc00::/7", "unique local (ULA)"],
  ["fe80::/10", "link-local"],
  ["fec0::/10", "site-local"],
  ["ff00::/8", "multicast"],
];
const NON_PUBLIC_CIDRS = NON_PUBLIC.map(([c, what]) => ({ net: parseCidr(c), what }));

/** The non-public range that holds `ip`, described, or undefined for a public address. */
export function nonPublicRange(ip: IpBytes): { cidr: string; what: string } | undefined {
  const hit = NON_PUBLIC_CIDRS.find(({ net }) => cidrContains(net, ip));
  return hit && { cidr: hit.net.text, what: hit.what };
}

/** The literal address in an https:// URL's host, if its host is one. */
export function literalHostOf(url: string): { host: string; ip: IpBytes } | undefined {
  const m = /^https:\/\/(\[([^\]]*)\]|[^/?#:]*)/.exec(url);
  if (!m) return undefined;
  const host = m[2] ?? m[1] ?? "";
  const ip = parseIp(host);
  return ip && { host, ip };
}
