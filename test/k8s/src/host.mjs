// What a real node changes on the host, recorded before it starts and put back after it
// stops: sysctls, iptables chains, network interfaces and namespaces, directories the
// kubelet, containerd and the CNI plugins create outside the run's directory, and cgroups.
// Plain JavaScript so that watchdog.mjs can restore the host under bare `node` when the
// process that started the node dies without doing it itself.
//
// snapshotHost() → a JSON-able record; restoreHost(record) undoes everything new since,
// and is idempotent (stop() and the watchdog may both run it).

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Sysctls the kubelet (setupKernelTunables), kube-proxy and the bridge plugin may write. */
export const SYSCTLS = [
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
  "net/ipv4/conf/all/route_localnet",
  "net/ipv4/ip_forward",
  "net/ipv6/conf/all/forwarding",
  "net/netfilter/nf_conntrack_max",
  "net/netfilter/nf_conntrack_tcp_timeout_established",
  "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
];

/** Paths outside the run's directory that the node's components create when absent. */
export const HOST_PATHS = [
  "/var/lib/kubelet",
  "/var/log/containers",
  "/var/log/pods",
  "/usr/libexec/kubernetes",
  "/var/lib/cni",
  "/run/containerd",
  "/run/netns",
  "/etc/cni",
  "/opt/cni",
  "/opt/containerd",
  "/var/lib/containerd",
];

const NETNS_DIR = "/run/netns";
const CGROUP_ROOT = "/sys/fs/cgroup";
const IPTABLES_TABLES = ["filter", "nat", "mangle", "raw"];

function run(cmd, args) {
  const result = spawnSync(cmd, args, { encoding: "utf8" });
  return {
    ok: !result.error && result.status === 0,
    out: result.stdout ?? "",
    err: result.stderr ?? "",
  };
}

function readSysctl(name) {
  try {
    return readFileSync(join("/proc/sys", name), "utf8").trim();
  } catch {
    return null; // not present on this kernel (e.g. nf_conntrack not loaded)
  }
}

function listDir(path) {
  try {
    return readdirSync(path).sort();
  } catch {
    return [];
  }
}

function interfaces() {
  return listDir("/sys/class/net");
}

/** Top-level cgroup directories of each hierarchy (kubelet adds `kubepods` and friends). */
function cgroupDirs() {
  const out = {};
  for (const hierarchy of listDir(CGROUP_ROOT)) {
    const path = join(CGROUP_ROOT, hierarchy);
    out[hierarchy] = listDir(path).filter((name) => {
      try {
        return readdirSync(join(path, name), { withFileTypes: true }) && !name.includes(".");
      } catch {
        return false;
      }
    });
  }
  return out;
}

/** iptables-save without counters and comments, so two snapshots compare as text. */
export function iptablesRules(binary = "iptables-save") {
  const result = run(binary, []);
  if (!result.ok) return "";
  return result.out
    .split("\n")
    .filter((line) => !line.startsWith("#"))
    .map((line) => line.replace(/\s\[\d+:\d+\]$/, ""))
    .join("\n");
}

function chains(binary, table) {
  const result = run(binary, ["-w", "-t", table, "-S"]);
  if (!result.ok) return [];
  return result.out
    .split("\n")
    .filter((line) => line.startsWith("-N "))
    .map((line) => line.slice(3).trim());
}

/** nftables tables ("ip nat", "ip6 filter" …); iptables-nft makes them on first use. */
function nftTables() {
  const result = run("nft", ["list", "tables"]);
  if (!result.ok) return [];
  return result.out
    .split("\n")
    .filter((line) => line.startsWith("table "))
    .map((line) => line.slice(6).trim());
}

/** The host state restoreHost() compares against. */
export function snapshotHost() {
  const iptables = {};
  for (const binary of ["iptables", "ip6tables"]) {
    iptables[binary] = {};
    for (const table of IPTABLES_TABLES) iptables[binary][table] = chains(binary, table);
  }
  return {
    sysctls: Object.fromEntries(SYSCTLS.map((name) => [name, readSysctl(name)])),
    paths: Object.fromEntries(HOST_PATHS.map((path) => [path, existsSync(path)])),
    netns: listDir(NETNS_DIR),
    interfaces: interfaces(),
    cgroups: cgroupDirs(),
    iptables,
    nftTables: nftTables(),
    iptablesSave: {
      iptables: iptablesRules("iptables-save"),
      ip6tables: iptablesRules("ip6tables-save"),
    },
  };
}

/** Mount points at or under `prefix`, deepest first. */
function mountsUnder(prefix) {
  const decode = (s) =>
    s.replace(/\\(\d{3})/g, (_, oct) => String.fromCharCode(Number.parseInt(oct, 8)));
  let text = "";
  try {
    text = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .map((line) => decode(line.split(" ")[1] ?? ""))
    .filter((point) => point === prefix || point.startsWith(`${prefix}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or under `path` (pod volumes, rootfs overlays, netns binds). */
export function unmountUnder(path) {
  for (const point of mountsUnder(path)) run("umount", ["-l", point]);
}

function killCgroupProcs(dir) {
  for (const entry of listDir(dir)) {
    const sub = join(dir, entry);
    if (entry === "cgroup.procs" || entry === "tasks") {
      for (const pid of readFileSync(sub, "utf8").split("\n").filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone already
        }
      }
    }
  }
  for (const entry of readdirSafe(dir))
    if (entry.isDirectory()) killCgroupProcs(join(dir, entry.name));
}

function readdirSafe(dir) {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function removeCgroupTree(dir) {
  for (const entry of readdirSafe(dir))
    if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      if (error.code === "ENOENT") return;
      // EBUSY while the killed processes are still exiting
      spawnSync("sleep", ["0.1"]);
    }
  }
}

function removeNewChains(binary, table, before) {
  const now = chains(binary, table);
  const added = now.filter((chain) => !before.includes(chain));
  if (added.length === 0) return;
  const rules = run(binary, ["-w", "-t", table, "-S"]).out.split("\n");
  // First every rule that jumps to a new chain, from any chain; then the chains.
  for (const rule of rules) {
    if (!rule.startsWith("-A ")) continue;
    const target = /\s-[jg]\s(\S+)/.exec(rule)?.[1];
    if (target && added.includes(target)) {
      const args = rule
        .slice(3)
        .match(/"[^"]*"|\S+/g)
        .map((a) => a.replace(/^"|"$/g, ""));
      run(binary, ["-w", "-t", table, "-D", ...args]);
    }
  }
  for (const chain of added) run(binary, ["-w", "-t", table, "-F", chain]);
  for (const chain of added) run(binary, ["-w", "-t", table, "-X", chain]);
}

/**
 * Puts the host back as `before` recorded it. `cleanups` are commands to run first (kube-proxy
 * --cleanup). Returns the problems it could not fix, as lines.
 */
export function restoreHost(before, cleanups = []) {
  const problems = [];
  // 1. Every process left in a cgroup the node created (containers, shims' children).
  for (const [hierarchy, dirs] of Object.entries(before.cgroups)) {
    const root = join(CGROUP_ROOT, hierarchy);
    for (const name of listDir(root)) {
      const path = join(root, name);
      if (!dirs.includes(name) && !name.includes(".") && readdirSafe(path).length > 0) {
        killCgroupProcs(path);
      }
    }
  }
  // 2. Network namespaces the CNI set up, then interfaces (the bridge; veths die with netns).
  for (const name of listDir(NETNS_DIR)) {
    if (before.netns.includes(name)) continue;
    unmountUnder(join(NETNS_DIR, name));
    rmSync(join(NETNS_DIR, name), { force: true });
  }
  for (const name of interfaces()) {
    if (!before.interfaces.includes(name)) run("ip", ["link", "delete", name]);
  }
  // 3. iptables: kube-proxy's own cleanup, then any other new chain (the kubelet's).
  for (const [cmd, ...args] of cleanups) run(cmd, args);
  for (const [binary, tables] of Object.entries(before.iptables)) {
    for (const [table, chainsBefore] of Object.entries(tables)) {
      removeNewChains(binary, table, chainsBefore);
    }
  }
  // The (now empty) tables iptables-nft created for the kubelet and kube-proxy.
  for (const table of nftTables()) {
    if (before.nftTables && !before.nftTables.includes(table)) {
      run("nft", ["delete", "table", ...table.split(" ")]);
    }
  }
  // 4. sysctls.
  for (const [name, value] of Object.entries(before.sysctls)) {
    if (value === null || readSysctl(name) === value) continue;
    try {
      writeFileSync(join("/proc/sys", name), value);
    } catch (error) {
      problems.push(`sysctl ${name}: cannot write back ${value}: ${error.message}`);
    }
  }
  // 5. Directories that did not exist before.
  for (const [path, existed] of Object.entries(before.paths)) {
    if (existed || !existsSync(path)) continue;
    unmountUnder(path);
    try {
      rmSync(path, { recursive: true, force: true });
    } catch (error) {
      problems.push(`${path}: cannot remove: ${error.message}`);
    }
  }
  // 6. cgroups, deepest first, once their processes are gone.
  for (const [hierarchy, dirs] of Object.entries(before.cgroups)) {
    const root = join(CGROUP_ROOT, hierarchy);
    for (const name of listDir(root)) {
      const path = join(root, name);
      if (!dirs.includes(name) && !name.includes(".") && readdirSafe(path).length > 0) {
        removeCgroupTree(path);
        if (existsSync(path)) problems.push(`cgroup ${path}: still present`);
      }
    }
  }
  return problems;
}

/** The differences between the host now and `before`, as lines (empty: restored). */
export function hostDifferences(before) {
  const now = snapshotHost();
  const lines = [];
  for (const [name, value] of Object.entries(before.sysctls)) {
    if (now.sysctls[name] !== value) lines.push(`sysctl ${name}: ${value} → ${now.sysctls[name]}`);
  }
  for (const [path, existed] of Object.entries(before.paths)) {
    if (now.paths[path] !== existed) lines.push(`${path}: ${existed ? "gone" : "created"}`);
  }
  const diff = (what, a, b) => {
    const added = b.filter((x) => !a.includes(x));
    const removed = a.filter((x) => !b.includes(x));
    if (added.length || removed.length) {
      lines.push(`${what}: +[${added.join(", ")}] -[${removed.join(", ")}]`);
    }
  };
  diff("network namespaces", before.netns, now.netns);
  diff("interfaces", before.interfaces, now.interfaces);
  diff("nftables tables", before.nftTables ?? [], now.nftTables);
  for (const hierarchy of Object.keys(before.cgroups)) {
    diff(`cgroups in ${hierarchy}`, before.cgroups[hierarchy], now.cgroups[hierarchy] ?? []);
  }
  for (const binary of Object.keys(before.iptablesSave)) {
    if (before.iptablesSave[binary] !== now.iptablesSave[binary]) {
      lines.push(
        `${binary}-save differs:\n--- before\n${before.iptablesSave[binary]}\n--- now\n${now.iptablesSave[binary]}`,
      );
    }
  }
  return lines;
}

/** Kills the containerd shims that serve the containerd listening on `address`. */
function killShims(address) {
  for (const pid of listDir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let args = [];
    try {
      args = readFileSync(join("/proc", pid, "cmdline"), "utf8").split("\0");
    } catch {
      continue;
    }
    const at = args.indexOf("-address");
    if ((args[0] ?? "").includes("containerd-shim") && at !== -1 && args[at + 1] === address) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
}

/**
 * The restore a node's harness records in its directory: { snapshot, cleanups, shimAddress,
 * unmount, lock }. Run by stop() and, if the parent died first, by watchdog.mjs.
 */
export function restoreFromFile(path) {
  const plan = JSON.parse(readFileSync(path, "utf8"));
  if (plan.shimAddress) killShims(plan.shimAddress);
  const problems = restoreHost(plan.snapshot, plan.cleanups ?? []);
  if (plan.unmount) unmountUnder(plan.unmount);
  if (plan.lock) rmSync(plan.lock, { recursive: true, force: true });
  return problems;
}
