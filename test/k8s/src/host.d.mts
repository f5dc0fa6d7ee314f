// Types for host.mjs (plain JavaScript so that watchdog.mjs can run it under bare node).

export interface HostSnapshot {
  sysctls: Record<string, string | null>;
  paths: Record<string, boolean>;
  netns: string[];
  interfaces: string[];
  cgroups: Record<string, string[]>;
  iptables: Record<string, Record<string, string[]>>;
  nftTables: string[];
  iptablesSave: Record<string, string>;
}

export const SYSCTLS: string[];
export const HOST_PATHS: string[];
export function snapshotHost(): HostSnapshot;
export function restoreHost(before: HostSnapshot, cleanups?: string[][]): string[];
export function hostDifferences(before: HostSnapshot): string[];
export function unmountUnder(path: string): void;
export function iptablesRules(binary?: string): string;
export function restoreFromFile(path: string): string[];
